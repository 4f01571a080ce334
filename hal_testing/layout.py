"""The parent's paths for a test: a `ParentLayout` under a temporary directory.

A `hal-agent` run as a subprocess gets it as the `HAL_*` variables `ParentLayout.from_env`
reads (`layout_env`). Code run in-process still reads `hal_common.paths`' globals;
`point_paths_at` moves them (and the environment the tmux server and its panes inherit) to the
layout for one test. When the product takes a `ParentLayout`, that function goes and the tests
pass the layout instead.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hal_common.layout import ParentLayout

if TYPE_CHECKING:
    import pytest

SOCKET_MAX = 100  # Linux caps unix socket paths at 108 bytes; keep a margin


def short_socket(base: Path, name: str = "tmux.sock") -> Path:
    """`base/name` when that is short enough for a unix socket, else one in a new short
    directory under /tmp (the caller's clean-up removes `socket.parent` then)."""
    path = base / name
    if len(str(path)) <= SOCKET_MAX:
        return path
    return Path(tempfile.mkdtemp(prefix="hal-", dir="/tmp")) / name


def parent_layout(
    base: Path, docker_host: str, config: Path | None = None, tmux_socket: Path | None = None
) -> ParentLayout:
    """The parent's file system under `base` (its run and log directories created), its inner
    engine `docker_host`. What `from_env` cannot be told (the config directory, the inner
    engine's data root: only read) stays the image's, so a `hal-agent` subprocess given
    `layout_env` of it builds this very layout."""
    run = base / "run"
    for d in (run, base / "log"):
        d.mkdir(parents=True, exist_ok=True)
    return ParentLayout(
        run_dir=run,
        log_dir=base / "log",
        claude_home=base / "claude",
        data_dir=base / "data",
        docker_host=docker_host,
        tmux_socket=tmux_socket or short_socket(run),
        config_override=config or base / "config" / "config.toml",
    )


def layout_env(layout: ParentLayout) -> dict[str, str]:
    """The `HAL_*` variables that make `hal-agent` use `layout` (`ParentLayout.from_env`'s
    inverse, for the fields it reads)."""
    env = {
        "HAL_RUN_DIR": str(layout.run_dir),
        "HAL_LOG_DIR": str(layout.log_dir),
        "HAL_CLAUDE_HOME": str(layout.claude_home),
        "HAL_DATA_DIR": str(layout.data_dir),
        "HAL_INNER_DOCKER_HOST": layout.inner_docker_host,
        "HAL_TMUX_SOCKET": str(layout.tmux_sock),
        "HAL9000_CONFIG": str(layout.config_file),
    }
    if layout.host_uid or layout.host_gid:
        env.update(HAL_HOST_UID=str(layout.host_uid), HAL_HOST_GID=str(layout.host_gid))
    if layout.roots:
        env["HAL_ROOTS"] = ":".join(layout.roots)
    return env


def point_paths_at(monkeypatch: pytest.MonkeyPatch, layout: ParentLayout) -> None:
    """For one test, `hal_common.paths`' globals (what in-process code reads) and the process
    environment (what a tmux server it starts, and `hal-agent` in its panes, inherit) say
    `layout`. Until the product takes a `ParentLayout`: then this goes."""
    from hal_common import paths
    from parent_agent.app import sessions

    for name, value in [
        ("RUN_DIR", layout.run_dir),
        ("READY_FILE", layout.ready_file),
        ("LOCK_DIR", layout.lock_dir),
        ("STATUS_FILE", layout.status_file),
        ("LOG_DIR", layout.log_dir),
        ("TMUX_SOCK", layout.tmux_sock),
        ("PARENT_CLAUDE_HOME", layout.claude_home),
        ("PARENT_DATA", layout.data_dir),
    ]:
        monkeypatch.setattr(paths, name, value)
    # its lock directory is a default argument, bound at import
    lock = functools.partial(sessions.session_lock, lock_dir=layout.lock_dir)
    monkeypatch.setattr(sessions, "session_lock", lock)
    for key, text in layout_env(layout).items():
        monkeypatch.setenv(key, text)
    monkeypatch.delenv("TMUX", raising=False)
