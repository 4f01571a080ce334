"""Fixed paths inside the parent container, and the host's config location."""

from __future__ import annotations

import os
from pathlib import Path

# Inside the parent container. The HAL_* variables exist so that tests can run hal-agent's
# commands against a test engine and a test tmux server on the host; the parent sets none.
RUN_DIR = Path(os.environ.get("HAL_RUN_DIR", "/run/hal9000"))
INNER_DOCKER_SOCK = RUN_DIR / "docker.sock"
INNER_DOCKER_HOST = os.environ.get("HAL_INNER_DOCKER_HOST", f"unix://{INNER_DOCKER_SOCK}")
INNER_API_VERSION = "1.41"  # dockerd 20.10 from Debian bookworm's docker.io
TMUX_SOCK = Path(os.environ.get("HAL_TMUX_SOCKET", str(RUN_DIR / "tmux.sock")))
READY_FILE = RUN_DIR / "ready"
LOCK_DIR = RUN_DIR / "locks"
STATUS_FILE = RUN_DIR / "status.json"  # the loop's recent errors, read by the dashboard
CONTROL_SOCK = RUN_DIR / "control.sock"  # the loop's requests (0600; workers never see it)
LOG_DIR = Path(os.environ.get("HAL_LOG_DIR", "/var/log/hal9000"))
PARENT_CONFIG_DIR = Path("/config/hal9000")
PARENT_CLAUDE_HOME = Path(os.environ.get("HAL_CLAUDE_HOME", "/config/claude"))
PARENT_DATA = Path(os.environ.get("HAL_DATA_DIR", "/data"))
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
