"""The harness's parent layouts: what a hal-agent subprocess is told, what in-process code is
handed, and sockets short enough for Linux."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from hal_common.layout import ParentLayout
from hal_testing.layout import LONGEST_SOCKET, SOCKET_MAX, layout_env, parent_layout, short_dir


def test_layout_env_is_what_from_env_reads_back(tmp_path: Path) -> None:
    layout = parent_layout(tmp_path, "unix:///tmp/engine.sock")
    assert ParentLayout.from_env(layout_env(layout)) == layout
    assert layout.run_dir.is_dir() and layout.log_dir.is_dir()
    owned = dataclasses.replace(layout, host_uid=1234, host_gid=1235, roots=("/a", "/b"))
    assert ParentLayout.from_env(layout_env(owned)) == owned
    inner = parent_layout(tmp_path / "x", "")  # no engine: the socket under run_dir
    assert ParentLayout.from_env(layout_env(inner)).inner_docker_host == inner.inner_docker_host
    assert inner.inner_docker_host == f"unix://{tmp_path}/x/run/docker.sock"


def test_a_long_base_gets_a_short_run_directory(tmp_path: Path) -> None:
    assert short_dir(tmp_path / "run") == tmp_path / "run"
    assert (tmp_path / "run").is_dir()
    deep = tmp_path / ("d" * 120)
    layout = parent_layout(deep, "")
    try:
        assert not layout.run_dir.is_relative_to(deep) and layout.run_dir.is_dir()
        for sock in (layout.run_dir / LONGEST_SOCKET, layout.tmux_sock, layout.control_socket):
            assert len(str(sock)) <= SOCKET_MAX
        assert layout.claude_home.is_relative_to(deep)  # only the sockets' directory moves
    finally:
        shutil.rmtree(layout.run_dir)


def test_the_parent_layout_fixture_patches_nothing(
    parent_layout: ParentLayout, tmp_path: Path
) -> None:
    assert parent_layout.run_dir.is_relative_to(tmp_path)
    assert parent_layout.claude_home.is_relative_to(tmp_path)
    assert parent_layout.config_file.is_relative_to(tmp_path)
    # in-process code is handed the layout: neither the environment nor the image's paths move
    assert "HAL_RUN_DIR" not in os.environ
    assert ParentLayout.from_env({}) == ParentLayout()
