"""The set-up scripts' facts that must agree with the package's (engine-free)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_python_the_scripts_want_is_the_one_the_package_requires() -> None:
    lib = (ROOT / "scripts/lib.sh").read_text()
    need = re.search(r"^NEED_PYTHON=(\d+)\.(\d+)$", lib, re.MULTILINE)
    assert need is not None
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == f">={need[1]}.{need[2]}"
    assert f"sys.version_info < ({need[1]}, {need[2]})" in lib  # new_enough's test


def test_the_manifest_kinds_install_sh_writes_are_the_ones_uninstall_reads() -> None:
    from host_shim.core.uninstall import KINDS, MANIFEST_NAME

    script = (ROOT / "install.sh").read_text()
    written = set(re.findall(r"made_line (\w+)", script))
    assert written and written <= set(KINDS)
    assert f"$VENV/{MANIFEST_NAME}" in script
