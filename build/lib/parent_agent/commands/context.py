"""What every hal-agent command needs, built once at the entry point (click's `ctx.obj`):
the parent's layout, the config, the inner engine, the tmux UI, logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
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
            hint="hal-agent run starts it; see /var/log/hal9000/dockerd.log",
            pool=32,  # the stats sampler asks about many workers at once
        )

    def ui(self) -> TmuxUI:
        from parent_agent.adapters.tmux import TmuxUI, server_for  # libtmux only when needed

        return TmuxUI(server_for(self.layout.tmux_sock))

    def inside_our_tmux(self) -> bool:
        """True when this process runs in a pane of the parent's tmux server."""
        return self.env.get("TMUX", "").split(",", 1)[0] == str(self.layout.tmux_sock)

    def setup_logging(
        self, level: str, to_file: bool, stderr: bool = True, name: str = "agent.log"
    ) -> None:
        handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)] if stderr else []
        if to_file:
            self.layout.log_dir.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(self.layout.log_dir / name))
        logging.basicConfig(
            level=getattr(logging, level.upper(), logging.INFO),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            handlers=handlers,
        )


pass_parent = click.make_pass_decorator(Parent)
