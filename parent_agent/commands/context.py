"""What every hal-agent command needs: the config, the inner engine, the tmux UI."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from hal_common import paths
from hal_common.config import Config, load_config
from parent_agent.adapters.engine import InnerEngine

if TYPE_CHECKING:
    from parent_agent.adapters.tmux import TmuxUI

log = logging.getLogger("parent_agent")


def config() -> Config:
    cfg = load_config(paths.config_file(in_parent=True))
    for w in cfg.warnings:
        log.warning("%s", w)
    return cfg


def inner() -> InnerEngine:
    return InnerEngine.connect(
        paths.INNER_DOCKER_HOST,
        "the parent's inner engine",
        hint="hal-agent run starts it; see /var/log/hal9000/dockerd.log",
        pool=32,  # the stats sampler asks about many workers at once
    )


def ui() -> TmuxUI:
    from parent_agent.adapters.tmux import TmuxUI, server_for  # libtmux only when tmux is needed

    return TmuxUI(server_for(paths.TMUX_SOCK))


def inside_our_tmux() -> bool:
    """True when this process runs in a pane of the parent's tmux server."""
    return os.environ.get("TMUX", "").split(",", 1)[0] == str(paths.TMUX_SOCK)


def setup_logging(level: str, to_file: bool, stderr: bool = True, name: str = "agent.log") -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)] if stderr else []
    if to_file:
        paths.LOG_DIR.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(paths.LOG_DIR / name))
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )
