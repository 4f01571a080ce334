"""The parent's paths for a test: a `ParentLayout` under a temporary directory.

Code run in-process is handed the layout (`Agent(cfg, layout)`, `sessions.spawn(..., layout,
env)`, the lock directory of the Claude home's writers); a `hal-agent` run as a subprocess, and
a tmux server with `hal-agent` in its panes, get it as the `HAL_*` variables
`ParentLayout.from_env` reads (`layout_env`). Nothing of the product is patched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hal_common.layout import ParentLayout
from hal_testing.claude import shared_store

SOCKET_MAX = 100  # Linux caps unix socket paths at 108 bytes; keep a margin
LONGEST_SOCKET = "control.sock"  # of the run directory's sockets (tmux.sock, docker.sock)


def short_dir(path: Path, name: str = LONGEST_SOCKET) -> Path:
    """`path`, made, when a socket `name` in it fits Linux's limit; else a new short directory
    under /tmp (the caller removes it then)."""
    if len(str(path / name)) <= SOCKET_MAX:
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="hal-", dir="/tmp"))


def parent_layout(
    base: Path,
    docker_host: str,
    config: Path | None = None,
    roots: tuple[Path, ...] = (),
    home: Path | None = None,
) -> ParentLayout:
    """The parent's file system under `base` (its run and log directories created; the run
    directory, which holds the sockets, in /tmp when `base` is too deep for them), its inner
    engine `docker_host`. What `from_env` cannot be told (the config directory, the inner
    engine's data root: only read) stays the image's, so a `hal-agent` subprocess given
    `layout_env` of it builds this very layout.

    The path policy's inputs, as claudy passes them: `roots` (projects live under them) and
    the host user's `home` (default `base/home`), both resolved; the config directory is
    the config file's."""
    config_file = config or base / "config" / "config.toml"
    home = home or base / "home"
    run = short_dir(base / "run")
    (base / "log").mkdir(parents=True, exist_ok=True)
    return ParentLayout(
        run_dir=run,
        log_dir=base / "log",
        claude_home=base / "claude",
        data_dir=base / "data",
        docker_host=docker_host,
        tmux_socket=run / "tmux.sock",
        config_override=config_file,
        roots=tuple(os.path.realpath(r) for r in roots),
        host_home=os.path.realpath(home),
        host_config_dir=os.path.realpath(config_file.parent),
        claude_store_dir=shared_store(),  # seeded by the `built_images` fixture
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
    if layout.host_home:
        env["HAL_HOST_HOME"] = layout.host_home
    if layout.host_config_dir:
        env["HAL_HOST_CONFIG_DIR"] = layout.host_config_dir
    if layout.claude_store_dir is not None:
        env["HAL_CLAUDE_STORE"] = str(layout.claude_store_dir)
    return env
