"""The parent's identity store and each worker's files, on a real file system."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hal_common.identity import GitIdentity
from hal_common.layout import ParentLayout
from parent_agent.adapters import identity_store

TOKEN = "ghp_STOREtoken0123456789"  # noqa: S105 - a test marker, no real token


def test_identity_and_token_reach_only_the_opted_in_worker(tmp_path: Path) -> None:
    layout = ParentLayout(data_dir=tmp_path / "data")
    me = (os.getuid(), os.getgid())
    assert identity_store.save_git(layout, GitIdentity("Ada", "ada@x.test"))
    assert not identity_store.save_git(layout, GitIdentity("Ada", "ada@x.test"))
    # a worker opted in before any token is imported gets it once one is
    assert not identity_store.write_worker(layout, "a", True, me)
    assert not (layout.worker_run("a") / "github-token").exists()
    identity_store.save_token(layout, TOKEN + "\n")
    assert identity_store.refresh_workers(layout) == 1
    assert (layout.worker_run("a") / "github-token").read_text() == TOKEN
    st = layout.identity_dir.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert stat.S_IMODE((layout.identity_dir / "github-token").stat().st_mode) == 0o600
    assert identity_store.write_worker(layout, "a", True, me)
    assert not identity_store.write_worker(layout, "b", False, me)
    a, b = layout.worker_run("a"), layout.worker_run("b")
    assert (a / "github-token").read_text() == TOKEN
    assert stat.S_IMODE((a / "github-token").stat().st_mode) == 0o400
    assert not (b / "github-token").exists()
    assert "ada@x.test" in (a / "gitconfig").read_text()
    assert "credential" in (a / "gitconfig").read_text()
    assert "credential" not in (b / "gitconfig").read_text()
    status = identity_store.token_status(layout)
    assert status["present"] and TOKEN not in str(status)
    # a new identity reaches every worker; a removed token leaves every worker
    identity_store.save_git(layout, GitIdentity("Ada", "new@x.test"))
    assert identity_store.refresh_workers(layout) == 2
    assert "new@x.test" in (b / "gitconfig").read_text()
    assert (a / "github-token").exists()  # kept its grant
    assert identity_store.remove_token(layout)
    identity_store.refresh_workers(layout)
    assert not (a / "github-token").exists()
    assert "credential" not in (a / "gitconfig").read_text()
    assert not identity_store.token_status(layout)["present"]


def test_a_link_in_a_run_directory_is_never_followed(tmp_path: Path) -> None:
    layout = ParentLayout(data_dir=tmp_path / "data")
    identity_store.write_worker(layout, "a", True, (os.getuid(), os.getgid()))
    identity_store.save_token(layout, TOKEN)
    run = layout.worker_run("a")
    target = tmp_path / "elsewhere"
    (run / "github-token").symlink_to(target)
    identity_store.refresh_workers(layout)  # logged, left alone
    assert not target.exists()
