"""The project as a user installs it: a wheel built by uv from a copy of the working tree,
installed into a fresh venv outside the checkout, run with nothing of the checkout in its
environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from hal_testing import REPO

UV = str(Path(sys.executable).with_name("uv"))  # the dev extra's
UV_ENV = {"UV_NATIVE_TLS": "1"}  # the system's CAs (a TLS proxy's), as pip uses them
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*_cache"
)


def outside(env: dict[str, str]) -> dict[str, str]:
    """`env` without the checkout: no PYTHONPATH or VIRTUAL_ENV, none of its folders on PATH."""
    path = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(REPO))
    )
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {**{k: v for k, v in env.items() if k not in drop}, "PATH": path}


def run(
    argv: list[str], env: dict[str, str], cwd: Path, stdin: str = "", check: bool = True
) -> str:
    """`argv` in `cwd`: its output and errors; an AssertionError saying them when it fails."""
    res = subprocess.run(
        argv, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=1800
    )
    if check:
        assert res.returncode == 0, (
            f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
        )
    return res.stdout + res.stderr


def build_wheel(base: Path) -> Path:
    """The wheel, built by uv under `base` from a copy of the working tree (the checkout
    itself stays clean); setuptools comes from the package index."""
    src = base / "src"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE, symlinks=True)
    env = {**UV_ENV, **outside(dict(os.environ))}
    run([UV, "build", "--wheel", "--out-dir", str(base / "dist")], env, src)
    (found,) = (base / "dist").glob("hal_9000-*.whl")
    return found


def install(wheel: Path, venv: Path) -> Path:
    """A fresh venv at `venv` with the wheel installed (its dependencies from the index), as
    `pip install` would; returns the venv's bin folder."""
    env, cwd = {**UV_ENV, **outside(dict(os.environ))}, venv.parent
    run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], env, cwd)
    run([UV, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
        env, cwd)  # fmt: skip
    return venv / "bin"


def lock_pins(text: str) -> dict[str, tuple[str, list[str]]]:
    """A hashed requirements file's pins (scripts/lock's): name -> (version, sha256 hashes)."""
    out: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in text.splitlines():
        if m := PIN.match(line):
            name = canonicalize_name(m.group(1))
            out[name] = (m.group(2), [])
        elif (h := line.strip()).startswith("--hash=sha256:") and name:
            out[name][1].append(h.removeprefix("--hash=sha256:").rstrip(" \\"))
    return out
