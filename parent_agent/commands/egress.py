"""`hal-agent egress [NAME]`: what the workers asked of the egress proxy and the service
gates, newest last, from the egress log (`ParentLayout.egress_log`)."""

from __future__ import annotations

import os
import time

import click

from hal_common.naming import session_name
from hal_common.protocol import EgressReply, EgressRow
from hal_io.manners import complete_worker
from parent_agent.adapters.egress_log import tail
from parent_agent.commands.context import Parent, pass_parent


def _worker(name: str) -> str:
    """A session name as given, or the session of a project directory."""
    if name.startswith(("/", ".", "~")) and os.path.isdir(os.path.expanduser(name)):
        return session_name(os.path.realpath(os.path.expanduser(name)))
    return name


def _when(t: float, now: float) -> str:
    fmt = "%H:%M:%S" if now - t < 86400 else "%Y-%m-%d %H:%M"
    return time.strftime(fmt, time.localtime(t))


def table(rows: list[EgressRow], now: float) -> str:
    head = ("time", "worker", "host:port", "verdict", "rule")
    lines = [head] + [
        (
            _when(r.t, now),
            r.worker or f"? {r.client}",
            f"[{r.host}]:{r.port}" if ":" in r.host else f"{r.host}:{r.port}",
            r.verdict,
            r.rule,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)), line[-1]])
        for line in lines
    )


@click.command()
@click.argument("name", required=False, shell_complete=complete_worker)
@click.option("--json", "as_json", is_flag=True, help="The rows as JSON.")
@click.option(
    "-n", "count", default=20, show_default=True, type=click.IntRange(min=1), help="How many."
)
@pass_parent
def egress(p: Parent, name: str | None, as_json: bool, count: int) -> None:
    """Requests from the workers (NAME's only, when given) to the outside and to the shared
    services: time, worker, host:port, allowed or denied, and the rule that decided."""
    path = p.layout.egress_log
    worker = _worker(name) if name else None
    rows = tail(path, count, worker)  # HalError when the log cannot be read
    if as_json:
        click.echo(EgressReply(tuple(rows)).dumps())
        return
    if not rows:
        if not path.exists() and not path.with_name(path.name + ".1").exists():
            click.echo(f"no requests logged yet ({path} does not exist)")
        else:
            click.echo(f"no requests from {worker} logged" if worker else "no requests logged")
        return
    click.echo(table(rows, time.time()))
