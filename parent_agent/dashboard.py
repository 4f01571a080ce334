"""The dashboard: a pure render of a status value (the live loop is in `dashboard_live`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from parent_agent.workers import Worker

STATE_STYLE = {"running": "green", "exited": "red", "created": "yellow", "paused": "yellow"}


@dataclass(frozen=True)
class Status:
    """Everything one frame shows; gathered by the adapter, rendered by `render`."""

    now: datetime
    engine_ok: bool
    workers: tuple[Worker, ...] = ()
    windows: frozenset[str] = frozenset()
    errors: tuple[str, ...] = field(default_factory=tuple)


def uptime(w: Worker, now: datetime) -> str:
    if w.state != "running" or w.started_at is None:
        return "-"
    secs = max(0, int((now - w.started_at).total_seconds()))
    if secs < 3600:
        return f"{secs // 60}m{secs % 60:02d}s"
    if secs < 86400:
        return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
    return f"{secs // 86400}d{secs % 86400 // 3600:02d}h"


def render(status: Status, height: int = 24) -> RenderableType:
    """One frame. Rows beyond what fits are counted, not drawn."""
    running = sum(1 for w in status.workers if w.state == "running")
    head = Text.assemble(
        ("hal-9000", "bold"),
        f"  workers: {running} running, {len(status.workers) - running} stopped   ",
        ("engine up" if status.engine_ok else "ENGINE DOWN (retrying)",
         "green" if status.engine_ok else "bold red"),
        f"   {status.now:%H:%M:%S}",
    )  # fmt: skip
    table = Table(box=None, expand=True, pad_edge=False, header_style="bold")
    table.add_column("name", no_wrap=True, ratio=3)
    table.add_column("project", no_wrap=True, overflow="ellipsis", ratio=4)
    table.add_column("state", no_wrap=True)
    table.add_column("uptime", no_wrap=True, justify="right")
    table.add_column("win", no_wrap=True)
    room = max(1, height - 3 - len(status.errors))
    shown = status.workers[:room] if len(status.workers) > room else status.workers
    for w in shown:
        table.add_row(
            w.name,
            w.project,
            Text(w.state, style=STATE_STYLE.get(w.state, "")),
            uptime(w, status.now),
            "yes" if w.name in status.windows else "-",
        )
    parts: list[RenderableType] = [head, table]
    hidden = len(status.workers) - len(shown)
    if hidden:
        parts.append(Text(f"… {hidden} more not shown (hal-agent ls lists all)", style="dim"))
    if not status.workers:
        parts.append(Text("no workers yet: hal-agent spawn DIR (below), or claudy DIR on the host",
                          style="dim"))  # fmt: skip
    parts.extend(Text(e, style="bold red") for e in status.errors)
    return Group(*parts)
