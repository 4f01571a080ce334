"""A build's staged context: small, what its Dockerfile copies in, and for the parent a wheel
that pip installs (no build backend) with hal-agent on PATH."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from host_shim.adapters.staging import AGENT_LAUNCHER, staged, wheel_name
from host_shim.core.build_context import FILES, PARENT, find_context

REPO = Path(__file__).resolve().parents[3]


def test_each_context_holds_its_dockerfile_and_what_it_copies_in() -> None:
    ctx = find_context()
    for dockerfile, files in FILES.items():
        with staged(ctx, dockerfile) as root:
            names = sorted(p.name for p in root.iterdir())
            wheel = [wheel_name(ctx.project)] if dockerfile == PARENT else []
            assert names == sorted([dockerfile, *files, *wheel])
            for name in (dockerfile, *files):
                assert (root / name).read_bytes() == (ctx.images / name).read_bytes()
        assert not root.exists()  # removed afterwards


def test_the_parent_wheel_is_reproducible_and_its_record_true() -> None:
    ctx = find_context()
    with staged(ctx, PARENT) as a, staged(ctx, PARENT) as b:
        first = (a / wheel_name(ctx.project)).read_bytes()
        assert first == (b / wheel_name(ctx.project)).read_bytes()
    zf = zipfile.ZipFile(io.BytesIO(first))
    info = f"hal_9000-{ctx.project.version}.dist-info"
    rows = list(csv.reader(io.StringIO(zf.read(f"{info}/RECORD").decode())))
    assert {r[0] for r in rows} == set(zf.namelist())
    for name, digest, size in rows:
        if name.endswith("RECORD"):
            continue
        data = zf.read(name)
        want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={want}", len(data)), name
    assert set(ctx.package_files()) <= set(zf.namelist())
    assert not any(n.startswith("host_shim/images/") for n in zf.namelist())
    meta = zf.read(f"{info}/METADATA").decode()
    assert all(f"Requires-Dist: {r}" in meta for r in ctx.project.requires)


def test_pip_installs_the_parent_wheel_with_hal_agent(tmp_path: Path) -> None:
    ctx = find_context()
    with staged(ctx, PARENT) as root:
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        argv += ["--target", str(tmp_path / "t"), str(root / wheel_name(ctx.project))]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    script = tmp_path / "t" / "bin" / "hal-agent"
    assert os.access(script, os.X_OK)
    # the checkout's launcher, bin/hal-agent, but for its comments
    code = [ln for ln in (REPO / "bin" / "hal-agent").read_text().splitlines() if ln[:2] != "# "]
    assert AGENT_LAUNCHER.decode().splitlines() == code
    lines = script.read_text().splitlines()
    assert lines[0].startswith("#!") and lines[1:] == code[1:]  # its #! the interpreter's
    assert (tmp_path / "t" / "parent_agent" / "tmux.conf").is_file()
