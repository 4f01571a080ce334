"""The wheel: everything the images are built from is inside it, and claudy installed from it
into a fresh venv outside the checkout (pip, or `uv tool install` as pipx would) finds its
build context there, not in the checkout, and would build the very images a clone builds.

Engine-free; it builds the wheel with uv (setuptools from the package index) and installs
its dependencies from the index (tests/e2e/test_wheel.py then builds the images with it)."""

from __future__ import annotations

import json
import os
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import hal_common
from hal_testing import REPO
from hal_testing.wheel import UV, UV_ENV, build_wheel, install, outside, run
from host_shim.core.build_context import (
    FILES,
    IMAGES,
    PACKAGES,
    PARENT,
    Recipe,
    find_context,
    source_hash,
)

RECIPES = [
    Recipe("w", "Dockerfile.worker", "minimal"),
    Recipe("s", "Dockerfile.services", None),
    Recipe("p", PARENT, None),
]
# What the venv's python prints: where its build context is, and the hash of each image
PROBE = """
import json
from host_shim.core.build_context import Recipe, find_context, source_hash
ctx = find_context()
recipes = [Recipe(*r) for r in json.loads(input())]
print(json.dumps({"root": str(ctx.root), "hashes": [source_hash(ctx, r) for r in recipes]}))
"""


def clean_env(home: Path) -> dict[str, str]:
    """The user's environment without the checkout, and a new home (uv's cache stays the
    user's: what it fetched once is not fetched again)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    uv_cache = os.environ.get("UV_CACHE_DIR") or str(Path(cache) / "uv")
    return {**UV_ENV, **outside(dict(os.environ)), "HOME": str(home), "UV_CACHE_DIR": uv_cache}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def package_files(root: Path) -> set[str]:
    out = set()
    for package in PACKAGES:
        for f in (root / package).rglob("*"):
            rel = f.relative_to(root)
            if f.is_file() and "__pycache__" not in rel.parts and f.suffix != ".pyc":
                out.add(rel.as_posix())
    return out


def test_the_wheel_holds_every_build_file_and_every_package_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for dockerfile, files in FILES.items():
        for name in (dockerfile, *files):
            assert f"{IMAGES}/{name}" in names
    assert {"parent_agent/tmux.conf", "parent_agent/shell.rc"} <= names
    assert {f"{p}/py.typed" for p in PACKAGES} <= names
    missing = package_files(REPO) - names
    assert not missing, f"in the checkout's packages but not in the wheel: {sorted(missing)}"
    info = f"hal_9000-{hal_common.__version__}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in meta


def test_the_wheel_says_what_pyproject_says(wheel: Path) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["version"] == hal_common.__version__
    assert wheel.name == f"hal_9000-{project['version']}-py3-none-any.whl"
    info = f"hal_9000-{project['version']}.dist-info"
    names = zipfile.ZipFile(wheel).namelist()
    # claudy and hal-agent are script files of their own (bin/), not entry points
    assert "scripts" not in project
    assert f"{info}/entry_points.txt" not in names
    launchers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(Path(p).name for p in launchers["script-files"]) == ["claudy", "hal-agent"]
    for path in launchers["script-files"]:
        data = f"hal_9000-{project['version']}.data/scripts/{Path(path).name}"
        assert zipfile.ZipFile(wheel).read(data) == (REPO / path).read_bytes()


def test_a_wheel_install_outside_the_checkout_finds_its_own_build_context(
    wheel: Path, tmp_path: Path
) -> None:
    """pip into a fresh venv: `claudy --help` runs, the build context is the venv's, and
    every image hashes as it does from the checkout (the same images; no rebuild)."""
    env = clean_env(tmp_path)
    venv = tmp_path / "venv"
    py = str(install(wheel, venv) / "python")
    claudy = venv / "bin" / "claudy"
    assert "Usage: claudy" in run([str(claudy), "--help"], env, tmp_path)
    # the installed launcher points at the venv's python and imports the quick entry before
    # anything else of weight: `re` (10-20 ms, what pip's generated scripts import first)
    # comes only with the full command line, after it
    assert claudy.read_text().splitlines()[0] == f"#!{venv / 'bin' / 'python'}"
    timed = run([str(claudy), "--help"], {**env, "PYTHONPROFILEIMPORTTIME": "1"}, tmp_path)
    names = [ln.rsplit("|", 1)[1].strip() for ln in timed.splitlines() if "import time:" in ln]
    assert names.index("host_shim.commands.quick") < names.index("re"), names
    # hal-agent's launcher alike: its quick entry first, click only with the full command
    agent = venv / "bin" / "hal-agent"
    assert agent.read_text().splitlines()[0] == f"#!{venv / 'bin' / 'python'}"
    timed = run([str(agent), "--help"], {**env, "PYTHONPROFILEIMPORTTIME": "1"}, tmp_path)
    assert "Usage: hal-agent" in timed
    names = [ln.rsplit("|", 1)[1].strip() for ln in timed.splitlines() if "import time:" in ln]
    assert names.index("parent_agent.commands.quick") < names.index("click"), names
    stdin = json.dumps([[r.tag, r.dockerfile, r.target] for r in RECIPES])
    found = json.loads(run([py, "-c", PROBE], env, tmp_path, stdin))
    root = Path(found["root"])
    assert root.is_relative_to(venv), root
    assert not root.is_relative_to(REPO)
    here = find_context()
    assert found["hashes"] == [source_hash(here, r) for r in RECIPES]


def test_uv_tool_install_gives_a_claudy_that_finds_its_build_context(
    wheel: Path, tmp_path: Path
) -> None:
    """`uv tool install` (as pipx does: a venv of its own, the scripts on PATH)."""
    env = clean_env(tmp_path)
    env.update(UV_TOOL_DIR=str(tmp_path / "tools"), UV_TOOL_BIN_DIR=str(tmp_path / "bin"))
    run([UV, "tool", "install", "--quiet", "--python", sys.executable, str(wheel)], env, tmp_path)
    claudy = tmp_path / "bin" / "claudy"
    assert "Usage: claudy" in run([str(claudy), "--help"], env, tmp_path)
    assert (tmp_path / "bin" / "hal-agent").exists()
    # no engine here: doctor fails, but says where the images would be built from
    no_engine = {**env, "DOCKER_HOST": "unix:///nonexistent", "COLUMNS": "500"}
    doctor = run([str(claudy), "doctor"], no_engine, tmp_path, check=False)
    (line,) = [ln for ln in doctor.splitlines() if "build context" in ln]
    assert "✓" in line and str(tmp_path / "tools") in line, doctor
