"""The wheel: everything the images are built from is inside it, and claudy installed from it
into a fresh venv outside the checkout (pip, or `uv tool install` as pipx would) finds its
build context there, not in the checkout, and would build the very images a clone builds.

Engine-free; it builds the wheel with uv (setuptools from the package index) and installs
its dependencies from the index (tests/e2e/test_wheel.py then builds the images with it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import hal_common
from hal_testing import REPO
from host_shim.core.build_context import (
    FILES,
    IMAGES,
    PACKAGES,
    PARENT,
    Recipe,
    find_context,
    source_hash,
)

UV = str(Path(sys.executable).with_name("uv"))
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*_cache"
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
    """An environment with nothing of the checkout in it: no PYTHONPATH, no venv, a new home."""
    keep = ("PATH", "LANG", "SSL_CERT_FILE", "UV_NATIVE_TLS", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("UV_")}
    path = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))
    )
    return {**env, "PATH": path, "HOME": str(home), "XDG_CACHE_HOME": str(cache_home())}


def cache_home() -> Path:
    """uv's cache: the user's, so that the wheels fetched once are reused."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def run(
    argv: list[str], env: dict[str, str], cwd: Path, stdin: str = "", check: bool = True
) -> str:
    res = subprocess.run(
        argv, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=600
    )
    if check:
        assert res.returncode == 0, f"{' '.join(argv)} exited {res.returncode}:\n{res.stderr}"
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built by uv from a copy of the working tree (the checkout stays clean)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE, symlinks=True)
    run([UV, "build", "--wheel", "--out-dir", str(base / "dist")], clean_env(base), src)
    (found,) = (base / "dist").glob("hal_9000-*.whl")
    return found


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
    scripts = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    for name, target in project["scripts"].items():
        assert f"{name} = {target}" in scripts


def test_a_wheel_install_outside_the_checkout_finds_its_own_build_context(
    wheel: Path, tmp_path: Path
) -> None:
    """pip into a fresh venv: `claudy --help` runs, the build context is the venv's, and
    every image hashes as it does from the checkout (the same images; no rebuild)."""
    env = clean_env(tmp_path)
    venv = tmp_path / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], env, tmp_path)
    py = str(venv / "bin" / "python")
    run([UV, "pip", "install", "--quiet", "--python", py, str(wheel)], env, tmp_path)
    assert "Usage: claudy" in run([str(venv / "bin" / "claudy"), "--help"], env, tmp_path)
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
