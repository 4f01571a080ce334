"""Fixed paths inside the parent container, and the host's config location."""

from __future__ import annotations

import os
from pathlib import Path

# Inside the parent container.
RUN_DIR = Path("/run/hal9000")
INNER_DOCKER_SOCK = RUN_DIR / "docker.sock"
INNER_DOCKER_HOST = f"unix://{INNER_DOCKER_SOCK}"
INNER_API_VERSION = "1.41"  # dockerd 20.10 from Debian bookworm's docker.io
TMUX_SOCK = RUN_DIR / "tmux.sock"
READY_FILE = RUN_DIR / "ready"
LOCK_DIR = RUN_DIR / "locks"
LOG_DIR = Path("/var/log/hal9000")
PARENT_CONFIG_DIR = Path("/config/hal9000")
PARENT_CLAUDE_HOME = Path("/config/claude")
PARENT_DATA = Path("/data")
INNER_DATA_ROOT = Path("/var/lib/docker")

# Inside a worker container.
WORKER_HOME = "/home/hal"
WORKER_CLAUDE_HOME = f"{WORKER_HOME}/.claude"
WORKER_BIN = "/usr/local/bin/hal-worker"

CONFIG_NAME = "config.toml"


def host_config_dir(env: dict[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/hal9000`, default `~/.config/hal9000`."""
    env = dict(os.environ) if env is None else env
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(xdg) / "hal9000"


def config_file(in_parent: bool, env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if override := env.get("HAL9000_CONFIG"):
        return Path(override)
    base = PARENT_CONFIG_DIR if in_parent else host_config_dir(env)
    return base / CONFIG_NAME
