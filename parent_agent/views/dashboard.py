"""The dashboard: a render of the loop's snapshot with rich (the command is commands/dashboard)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hal_common.protocol import EgressRow
from parent_agent.core.agent_state import EXITED, AgentState, clean, need_you, unexpected
from parent_agent.core.model import ServiceState, Worker
from parent_agent.core.snapshot import Health, Snapshot
from parent_agent.core.usage import Usage, human_bytes

STATE_STYLE = {"running": "green", "exited": "red", "created": "yellow", "paused": "yellow"}
CHROME_ROWS = 4  # header, column titles, totals, a hidden-rows note
WIDE = 110  # narrower panes leave out the project and pids columns: the agent matters more


def uptime(w: Worker, now: datetime) -> str:
    if w.state != "running" or w.started_at is None:
        return "-"
    secs = max(0, int((now - w.started_at).total_seconds()))
    if secs < 3600:
        return f"{secs // 60}m{secs % 60:02d}s"
    if secs < 86400:
        return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
    return f"{secs // 86400}d{secs % 86400 // 3600:02d}h"


def claude_outdated(w: Worker, target: str) -> bool:
    """The worker runs another Claude Code than a restart would give it."""
    return bool(target) and w.claude != target


def claude_cell(w: Worker, target: str) -> Text:
    """The worker's Claude Code version; `outdated` (yellow) when a restart gives another."""
    if claude_outdated(w, target):
        return Text(f"{w.claude or '?'} outdated", style="yellow")
    return Text(w.claude or "-")


def _state(w: Worker, template: str, claude: str = "") -> Text:
    old_template = template and w.template and w.template != template
    if w.state == "running" and (old_template or claude_outdated(w, claude)):
        return Text("outdated", style="yellow")  # restart it: new image/command/Claude Code
    label = w.state if w.state != "exited" else f"exited {w.exit_code}"
    style = STATE_STYLE.get(w.state, "")
    if w.state == "exited" and w.exit_code == 0:
        style = "dim"
    return Text(label, style=style)


AGENT_STYLE = {"waiting": "bold red", "working": "green", "idle": "cyan", "starting": "yellow"}


def agent_cell(a: AgentState | None, now: datetime | None = None) -> Text:
    """The agent's state, for how long when it waits for you, and why: `waiting 2m
    permission: Bash`. The reason is the worker's own text: a Text (never markup), cleaned
    again of anything but printable characters."""
    if a is None:
        return Text("-", style="dim")
    if a.state == EXITED:
        style = "bold red" if unexpected(a) else "dim"
    else:
        style = AGENT_STYLE.get(a.state, "")
    label = a.label()
    if a.needs_you and now is not None:
        label += f" {_age(now - a.since)}"
    cell = Text(label, style=style)
    reason = clean(a.reason)
    if reason:
        cell.append(f" {reason}", style="dim" if not a.needs_you else "")
    return cell


def _age(d: timedelta) -> str:
    """`40s`, `3m`, `2h`: how long an agent has waited."""
    s = max(0, int(d.total_seconds()))
    return f"{s}s" if s < 60 else f"{s // 60}m" if s < 3600 else f"{s // 3600}h"


def _mem(u: Usage | None) -> str:
    if u is None:
        return "-"
    limit = f"/{human_bytes(u.mem_limit)}" if u.mem_limit and u.mem_limit < 1 << 50 else ""
    return human_bytes(u.mem_used) + limit


def ports_cell(w: Worker, status: Snapshot) -> Text:
    """The worker's listed ports and their host ports: `3000→:47100` (the URL's port on the
    address `hal-agent ports` shows), `3000→?` in yellow when it has none."""
    cell = Text()
    for r in (r for r in status.ports if r.name == w.name):
        if cell:
            cell.append(" ")
        if r.host_port is not None:
            cell.append(f"{r.port}→:{r.host_port}")
        else:
            cell.append(f"{r.port}→?", style="yellow")
    return cell or Text("-", style="dim")


def _health(h: Health) -> Text:
    if h.stale_s:
        silent = f"AGENT LOOP SILENT for {h.stale_s}s (hal-agent logs --agent)"
        parts = [(silent, "bold red")]
    elif h.engine_ok:
        parts = [("engine up", "green")]
    elif h.starting:
        parts = [("engine starting…", "yellow")]
    else:
        parts = [("ENGINE DOWN (retrying)", "bold red")]
    if h.engine_ok and not h.images_ok:
        parts.append(("  worker image missing: run claudy on the host", "bold yellow"))
    if h.disk_free is not None:
        low = h.disk_free < 2 << 30
        parts.append((f"  {human_bytes(h.disk_free)} free", "bold red" if low else "dim"))
    return Text.assemble(*parts)


def services_lines(services: tuple[ServiceState, ...]) -> list[Text]:
    """The shared services in one row, the ones down first (with a word on why), and, when
    any is down, where to read more."""
    down = [s for s in services if not s.ok and s.state not in ("disabled", "waiting")]
    off = [s for s in services if s.state == "disabled"]
    parts: list[tuple[str, str] | str] = [("services ", "bold")]
    for s in services:  # their image builds in the background (a first run): not a fault
        if s.state == "waiting":
            parts += [(f"… {s.name} waiting for image", "yellow"), "  "]
    for s in down:
        why = s.detail.split(",")[0] if s.state == "exited" else s.state
        parts += [(f"✗ {s.name} {why}", "bold red"), "  "]
    for s in off:
        parts += [(f"- {s.name} off", "dim"), "  "]
    for s in services:
        if s.ok:
            parts += [(f"✓ {s.name}", "green"), "  "]
    lines = [Text.assemble(*parts[:-1], no_wrap=True, overflow="ellipsis")]
    if down:
        hint = "  hal-agent services says why; its --restart NAME retries"
        lines.append(Text(hint, style="dim", no_wrap=True, overflow="ellipsis"))
    return lines


def denial_line(row: EgressRow) -> Text:
    """The egress proxy's latest refusal, in one line: when, who, where, why."""
    when = datetime.fromtimestamp(row.t, UTC).astimezone()
    who = row.worker or row.client
    text = (
        f"egress denied {when:%H:%M:%S} {who} → {row.host}:{row.port} ({row.rule})"
        "  hal-agent egress lists them; [network] allow adds a host"
    )
    return Text(text, style="yellow", no_wrap=True, overflow="ellipsis")


def ordered_workers(workers: tuple[Worker, ...], wait: dict[str, int]) -> list[Worker]:
    """Those that need you first (oldest wait first), then the running, so they stay
    visible when rows run out; a repository's tasks right after its own worker (grouped by
    their best member: a waiting task brings its repository up)."""

    def rank(w: Worker) -> tuple[int, bool]:
        return (wait.get(w.name, len(wait)), w.state != "running")

    groups: dict[str, list[Worker]] = {}
    for w in workers:
        groups.setdefault(w.repo or w.project, []).append(w)
    out: list[Worker] = []
    for _, members in sorted(groups.items(), key=lambda g: (min(rank(w) for w in g[1]), g[0])):
        out += sorted(members, key=lambda w: (bool(w.task), rank(w), w.name))
    return out


def render(status: Snapshot, height: int = 24, width: int = 80) -> RenderableType:
    """One frame that fits `height` rows: rows beyond it are counted, not drawn."""
    running = [w for w in status.workers if w.state == "running"]
    names = {w.name for w in running}
    waiting = [s for s in need_you(status.agents) if s in names]
    head = Text.assemble(
        ("hal-9000", "bold"),
        "  ",
        (f"{len(waiting)} need you" if waiting else "", "bold red"),
        " · " if waiting else "",
        f"{len(running)} running, {len(status.workers) - len(running)} stopped   ",
        _health(status.health),
        f"   {status.now:%H:%M:%S}",
    )
    table = Table(box=None, expand=True, pad_edge=False, header_style="bold", width=width)
    wide = width >= WIDE
    table.add_column("name", no_wrap=True, overflow="ellipsis", ratio=3)
    if wide:
        table.add_column("project", no_wrap=True, overflow="ellipsis", ratio=4)
    table.add_column("state", no_wrap=True)
    table.add_column("agent", no_wrap=True, overflow="ellipsis", ratio=4)
    table.add_column("cpu", no_wrap=True, justify="right")
    table.add_column("mem", no_wrap=True, justify="right")
    if wide:
        table.add_column("pids", no_wrap=True, justify="right")
    table.add_column("up", no_wrap=True, justify="right")
    with_ports = bool(status.ports)
    if with_ports:
        table.add_column("ports", no_wrap=True, overflow="ellipsis")
    if wide:
        table.add_column("claude", no_wrap=True)
    table.add_column("win", no_wrap=True)
    notes = (
        [
            Text(
                f"restart needed: {', '.join(status.restart_needed)} changed "
                "(claudy down && claudy)",
                style="bold yellow",
            )
        ]
        if status.restart_needed
        else []
    )
    notes[:0] = services_lines(status.services) if status.services else []
    if status.last_denial is not None:
        notes.append(denial_line(status.last_denial))
    errors = status.recent_errors(status.now)
    room = max(1, height - CHROME_ROWS - len(errors) - len(notes))
    if status.max_rows:
        room = min(room, status.max_rows)
    wait = {name: i for i, name in enumerate(waiting)}
    ordered = ordered_workers(status.workers, wait)
    shown = ordered[:room]
    for w in shown:
        u = status.usage.get(w.name)
        cpu = f"{u.cpu_pct:.0f}%" if u is not None and u.cpu_pct is not None else "-"
        cells: list[RenderableType] = [
            # Texts: a name or a path is shown as it is, never as markup; a task's row sits
            # under its repository's
            Text(f"└ {w.name}" if w.task else w.name),
            *([Text(f"task {w.task} in {w.repo}" if w.task else w.project)] if wide else []),
            _state(w, status.template, status.claude),
            agent_cell(status.agents.get(w.name), status.now),
            cpu,
            _mem(u),
            *([str(u.pids) if u else "-"] if wide else []),
            uptime(w, status.now),
            *([ports_cell(w, status)] if with_ports else []),
            *([claude_cell(w, status.claude)] if wide else []),
            "yes" if w.name in status.windows else "-",
        ]
        table.add_row(*cells, style="bold" if w.name in wait else None)
    parts: list[RenderableType] = [head, table]
    hidden = len(ordered) - len(shown)
    if status.usage:
        cpu_total = sum(u.cpu_pct or 0.0 for u in status.usage.values())
        mem_total = sum(u.mem_used for u in status.usage.values())
        parts.append(
            Text(
                f"total: cpu {cpu_total:.0f}%  mem {human_bytes(mem_total)}"
                + (f"   … {hidden} more not shown (hal-agent ls -a)" if hidden else ""),
                style="dim",
            )
        )
    elif hidden:
        parts.append(Text(f"… {hidden} more not shown (hal-agent ls -a)", style="dim"))
    if not status.workers:
        hint = "no workers yet: `hal-agent spawn DIR` below, or `claudy DIR` on the host"
        parts.append(Text(hint, style="dim"))
    parts.extend(notes)
    parts.extend(Text(e, style="bold red") for e in errors)
    return Group(*parts)
