"""What every hal-agent command needs, built once at the entry point (click's `ctx.obj`):
the parent's layout, the config, the inner engine, the tmux UI, logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hal_common.config import Config, load_config
from hal_common.layout import ParentLayout

if TYPE_CHECKING:
    from parent_agent.adapters.engine import InnerEngine
    from parent_agent.adapters.tmux import TmuxUI

log = logging.getLogger("parent_agent")


@dataclass(frozen=True)
class Parent:
    """The parent as a command sees it: where things are, and the environment it ran in."""

    layout: ParentLayout
    env: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Parent:
        return cls(ParentLayout.from_env(env), env)

    def config(self) -> Config:
        cfg = load_config(self.layout.config_file, self.env)
        for w in cfg.warnings:
            log.warning("%s", w)
        return cfg

    def inner(self) -> InnerEngine:
        # docker-py only when needed: `hal-agent run` draws its first frame before it loads
        from parent_agent.adapters.engine import InnerEngine

        return InnerEngine.connect(
            self.layout.inner_docker_host,
            "the parent's inner engine",
            hint="hal-agent run starts it; `hal-agent logs --dockerd` says why not",
            pool=32,  # the stats sampler asks about many workers at once
        )

    def ui(self) -> TmuxUI:
        from parent_agent.adapters.tmux import TmuxUI, server_for  # libtmux only when needed

        return TmuxUI(server_for(self.layout.tmux_sock))

    def inside_our_tmux(self) -> bool:
        """True when this process runs in a pane of the parent's tmux server."""
        from parent_agent.core.tmux import inside_tmux

        return inside_tmux(self.env, self.layout.tmux_sock)

    def setup_logging(self, level: str, to_file: Path | None, stderr: bool = True) -> None:
        """Logging for a long-running command: to stderr, and to `to_file` (one of the
        layout's logs, in the data volume), rotated by size."""
        handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)] if stderr else []
        if to_file is not None:
            from parent_agent.adapters import logfiles

            handlers.append(logfiles.file_handler(to_file))
        logging.basicConfig(
            level=getattr(logging, level.upper(), logging.INFO),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            handlers=handlers,
        )


pass_parent = click.make_pass_decorator(Parent)
