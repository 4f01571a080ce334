"""What claudy tells the parent about the host user: the home its roots are expanded from."""

from __future__ import annotations

import os
from pathlib import Path

from host_shim.commands.context import host_user


def test_the_host_users_home_is_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    user = host_user({}, str(tmp_path / "link"))
    assert user.home == str(tmp_path / "real")
    assert (user.uid, user.gid) == (os.getuid(), os.getgid())
    assert host_user({}).home == ""
