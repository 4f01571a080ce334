"""claudy's forwarded commands: hal-agent's own, run in the parent.

`claudy ls`, `claudy logs NAME -f` … are `hal-agent ls`, `hal-agent logs NAME -f` in the
parent, in one `docker exec` that the terminal is handed to. Their help, usage, options and
completion are hal-agent's click commands themselves (the same source, so they never drift);
those are imported only to show help or to complete, never to run one (that costs claudy's
start-up nothing): the words go to the parent as typed, and hal-agent parses them there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from functools import cached_property

import click

from hal_common.config import load_config
from hal_common.protocol import PARENT_RUNNING
from hal_io import manners
from host_shim.adapters.parent import find_parent, running_parent
from host_shim.adapters.parent_client import ParentClient
from host_shim.adapters.terminal import find_docker_cli, hand_over
from host_shim.commands.context import Host, load_ctx
from host_shim.core import handover


def hal_agent_command(name: str) -> click.Command:
    """hal-agent's command `name` (its module imported now)."""
    # host_shim does not import parent_agent (pyproject's "packages" contract) but here:
    # the help of a forwarded command is hal-agent's own, not a copy that could drift
    from parent_agent.commands.cli import main as hal_agent

    found = hal_agent.get_command(click.Context(hal_agent, info_name="hal-agent"), name)
    if found is None:
        raise RuntimeError(f"hal-agent has no command {name!r}")
    return found


WORDS = "claudy.forwarded"  # ctx.meta's key: the words as typed


class Forwarded(click.Command):
    """`claudy NAME ARGS`: `hal-agent NAME ARGS` in the parent. Parsed here only to show
    help (-h/--help) or to complete; run, the words go as they are."""

    def __init__(self, name: str) -> None:
        super().__init__(name, add_help_option=False)

    @cached_property
    def real(self) -> click.Command:
        return hal_agent_command(str(self.name))

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.real.get_params(ctx)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.real.format_help_text(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.real.get_short_help_str(limit)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[WORDS] = list(args)
        if ctx.resilient_parsing or _asks_help(args, ctx.help_option_names):
            return super().parse_args(ctx, args)  # hal-agent's parameters: help, completion
        return []

    def invoke(self, ctx: click.Context) -> None:
        host = ctx.find_object(Host)
        if host is None:
            raise RuntimeError("claudy's group callback did not run")
        forward(host, [str(self.name), *ctx.meta[WORDS]])


def _asks_help(args: Sequence[str], names: Sequence[str]) -> bool:
    words = args[: args.index("--")] if "--" in args else args
    return any(a in names for a in words)


def forward(host: Host, args: list[str]) -> None:
    """Run `hal-agent ARGS` in the parent, handing it this terminal."""
    c = load_ctx(host)
    running_parent(c.engine(), c.cfg.parent.name)
    # host paths are the parent's paths too (roots are mounted at the same place)
    passed = [os.path.realpath(a) if os.path.isdir(a) else a for a in args]
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    argv = handover.forward_argv(
        c.cfg.parent.name, [*manners.flags(), *passed], tty, host.term, no_color=not manners.color()
    )
    hand_over(find_docker_cli(host.env), handover.on_engine(argv, c.host.cli_args()))


def parent_workers() -> list[str]:
    """The workers' names, from the parent (completion: none when it does not run)."""
    host = Host.from_env(os.environ)
    cfg = load_config(host.layout.config_file, host.env)  # its warnings: not in a completion
    host = host.with_engine(host.choice(cfg.parent.engine))
    parent = find_parent(host.engine(), cfg.parent.name)
    if parent is None or parent.status != PARENT_RUNNING:
        return []
    return [r.name for r in ParentClient(parent).ls(include_stopped=True)]
