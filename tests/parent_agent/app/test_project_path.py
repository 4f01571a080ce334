"""The parent's one gate for project paths: the policy on the layout claudy started it with."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal_common.errors import UsageError
from hal_common.layout import ParentLayout
from parent_agent.app.sessions import looks_like_path, project_path


def test_paths_and_session_names_are_told_apart() -> None:
    for path in ("/a", "./a", "../a", ".", "~", "~/a", "a/b"):
        assert looks_like_path(path), path
    for name in ("alpha-1234abcd", "my-gamma", "x"):
        assert not looks_like_path(name), name


def test_project_path_reads_the_roots_and_home_claudy_passed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / "src" / "app").mkdir(parents=True)
    env = {"HAL_ROOTS": str(home), "HAL_HOST_HOME": str(home)}
    layout = ParentLayout.from_env(env)
    assert project_path(str(home / "src" / "app"), layout) == str(home / "src" / "app")
    assert project_path("~/src/app", layout) == str(home / "src" / "app")
    with pytest.raises(UsageError, match="sensitive directory"):
        project_path("~/.ssh", layout)
    with pytest.raises(UsageError, match="a root itself"):
        project_path(str(home), layout)
    # a parent started without the policy's inputs (an older claudy) refuses every path
    with pytest.raises(UsageError, match="does not know the host user's home"):
        project_path(str(home / "src"), ParentLayout.from_env({"HAL_ROOTS": str(home)}))
    with pytest.raises(UsageError, match="no roots are configured"):
        project_path(str(home / "src"), ParentLayout.from_env({"HAL_HOST_HOME": str(home)}))
