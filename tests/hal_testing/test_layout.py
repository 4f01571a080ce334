"""The harness's parent layouts: what a hal-agent subprocess is told, what in-process code
reads, and sockets short enough for Linux."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from hal_common import paths
from hal_common.layout import ParentLayout
from hal_testing.layout import SOCKET_MAX, layout_env, parent_layout, short_socket
from parent_agent.app import sessions


def test_layout_env_is_what_from_env_reads_back(tmp_path: Path) -> None:
    layout = parent_layout(tmp_path, "unix:///tmp/engine.sock")
    assert ParentLayout.from_env(layout_env(layout)) == layout
    assert layout.run_dir.is_dir() and layout.log_dir.is_dir()
    owned = dataclasses.replace(layout, host_uid=1234, host_gid=1235, roots=("/a", "/b"))
    assert ParentLayout.from_env(layout_env(owned)) == owned
    inner = parent_layout(tmp_path / "x", "")  # no engine: the socket under run_dir
    assert ParentLayout.from_env(layout_env(inner)).inner_docker_host == inner.inner_docker_host
    assert inner.inner_docker_host == f"unix://{tmp_path}/x/run/docker.sock"


def test_a_long_base_gets_a_short_socket(tmp_path: Path) -> None:
    assert short_socket(tmp_path) == tmp_path / "tmux.sock"
    sock = short_socket(tmp_path / ("d" * 120))
    try:
        assert len(str(sock)) <= SOCKET_MAX and sock.parent.is_dir()
    finally:
        shutil.rmtree(sock.parent)


def test_parent_paths_move_what_in_process_code_writes(
    parent_paths: ParentLayout, tmp_path: Path
) -> None:
    assert parent_paths.run_dir.is_relative_to(tmp_path)
    assert (parent_paths.lock_dir, parent_paths.ready_file) == (paths.LOCK_DIR, paths.READY_FILE)
    assert parent_paths.claude_home == paths.PARENT_CLAUDE_HOME
    assert os.environ["HAL_RUN_DIR"] == str(parent_paths.run_dir)  # for tmux and its panes
    with sessions.session_lock("proj-12345678"):  # a default bound at import, moved too
        assert (parent_paths.lock_dir / "proj-12345678.lock").exists()
