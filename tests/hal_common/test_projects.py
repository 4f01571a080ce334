"""Which directories may be projects: the roots, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal_common.errors import UsageError
from hal_common.projects import check_roots, expand_roots, resolve_project


def test_resolve_project_rules(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proj = root / "proj"
    proj.mkdir(parents=True)
    (root / "file").write_text("x")
    (root / "link").symlink_to(proj)
    roots = expand_roots((str(root),), "/nowhere")
    assert resolve_project(str(root / "link"), roots) == str(proj)
    for bad, needle in [
        (root / "missing", "no such directory"),
        (root / "file", "not a directory"),
        (root, "is a root itself"),
        (tmp_path, "not under a configured root"),
        (Path("/etc"), "system directory"),
    ]:
        with pytest.raises(UsageError, match=needle):
            resolve_project(str(bad), roots)


def test_roots_expand_home_and_refuse_system_dirs() -> None:
    assert expand_roots(("~", "~/src"), "/home/u") == ("/home/u", "/home/u/src")
    with pytest.raises(UsageError, match="system directory"):
        check_roots(("/usr",))
