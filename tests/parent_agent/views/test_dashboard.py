"""The dashboard's render: a pure function of a Snapshot, checked without engines."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from parent_agent.core.agent_state import AgentState
from parent_agent.core.model import Worker
from parent_agent.core.snapshot import Health, LoopError, Snapshot
from parent_agent.core.usage import Usage
from parent_agent.views.dashboard import render

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def worker(i: int, state: str = "running", template: str = "t1", code: int = 0) -> Worker:
    return Worker(
        f"proj-{i:02d}-0123abcd",
        f"hal9000-w-proj-{i:02d}",
        f"/home/u/src/proj-{i:02d}",
        "hal9000/worker:minimal",
        state,
        NOW - timedelta(seconds=75 + i),
        NOW,
        exit_code=code,
        template=template,
    )


def text(status: Snapshot, width: int = 80, height: int = 24) -> list[str]:
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(render(status, height, width))
    return console.export_text().rstrip("\n").split("\n")


def test_fifty_workers_fit_80x24_and_say_how_many_are_hidden() -> None:
    ws = tuple(worker(i, "running" if i % 4 else "exited") for i in range(50))
    use = {
        w.name: Usage(3.0, 150 << 20, 4 << 30, 12, 0, 0, 0, 0) for w in ws if w.state == "running"
    }
    lines = text(Snapshot(NOW, Health(True, True, 50 << 30), ws, frozenset(), use))
    assert len(lines) <= 24
    assert all(len(line) <= 80 for line in lines)
    assert "37 running, 13 stopped" in lines[0] and "engine up" in lines[0]
    # 80 columns: no project or pids column, the agent's state instead
    assert "agent" in lines[1] and "project" not in lines[1] and "pids" not in lines[1]
    shown = sum(1 for line in lines if "proj-" in line and ("running" in line or "exited" in line))
    assert f"{50 - shown} more not shown" in "\n".join(lines)
    # running workers come first, so they stay visible
    assert "exited" not in "\n".join(lines[2 : 2 + shown])
    assert "150.0MiB/4.0GiB" in "\n".join(lines) and "3%" in "\n".join(lines)


def test_engine_down_is_said_and_no_rows_are_invented() -> None:
    lines = text(Snapshot(NOW, Health(False), ()))
    assert "ENGINE DOWN (retrying)" in lines[0]
    assert "no workers yet" in "\n".join(lines)


def test_outdated_restart_needed_errors_and_exit_codes() -> None:
    ws = (worker(1, template="old"), worker(2), worker(3, "exited", code=137))
    error = LoopError(NOW.isoformat(), "worker x exited with code 137")
    st = Snapshot(
        NOW,
        Health(True, images_ok=False),
        ws,
        frozenset({ws[1].name}),
        errors=(error,),
        template="t1",
        restart_needed=("parent.memory",),
    )
    out = "\n".join(text(st, width=120))
    assert "outdated" in out and "exited 137" in out
    assert "restart needed: parent.memory" in out
    assert "worker image missing" in out
    assert "worker x exited with code 137" in out
    assert out.count(" yes") == 1


@pytest.mark.parametrize("rows", [1, 5])
def test_max_rows_caps_the_list(rows: int) -> None:
    ws = tuple(worker(i) for i in range(10))
    lines = text(Snapshot(NOW, Health(True), ws, max_rows=rows), width=120)
    assert sum(1 for line in lines if "/home/u/src" in line) == rows


def test_a_starting_parent_is_not_called_down() -> None:
    lines = text(Snapshot(NOW, Health(False, starting=True), ()))
    assert "engine starting" in lines[0] and "DOWN" not in lines[0]


def test_the_services_line_says_which_is_down_and_why_in_one_row() -> None:
    from rich.console import Console

    from parent_agent.core.model import ServiceState

    services = (
        ServiceState("chromadb", True, "ok", ":8000", 8000),
        ServiceState("chroma-mcp", False, "exited", "exited 137, 5 restarts", 8811, True),
        ServiceState("memory-bank", False, "disabled", "enabled = false", 8812, True),
    )
    st = Snapshot(now=datetime.now(UTC), health=Health(engine_ok=True), services=services)
    console = Console(width=60, height=12, record=True)
    console.print(render(st, 12, 60))
    lines = console.export_text().splitlines()
    (line,) = [ln for ln in lines if ln.startswith("services")]
    assert line.startswith("services ✗ chroma-mcp exited 137  - memory-bank off  ✓ chro")
    assert len(line) <= 60 and not any(ln.startswith("- memory-bank") for ln in lines)
    assert any("hal-agent services says why; its --restart NAME" in ln for ln in lines)


def test_the_last_egress_denial_is_one_line() -> None:
    from datetime import UTC, datetime

    from rich.console import Console

    from hal_common.protocol import EgressRow
    from parent_agent.core.snapshot import Health, Snapshot
    from parent_agent.views.dashboard import render

    row = EgressRow(1.5e9, "one-1234", "10.213.213.2", "evil.test", 443, None, "deny",
                    "not in the allowlist", "CONNECT")  # fmt: skip
    snap = Snapshot(now=datetime(2026, 1, 1, tzinfo=UTC), health=Health(True), last_denial=row)
    console = Console(width=200, record=True, color_system=None)
    console.print(render(snap, height=24, width=200))
    lines = [ln for ln in console.export_text().splitlines() if "egress denied" in ln]
    assert len(lines) == 1
    assert "one-1234 → evil.test:443 (not in the allowlist)" in lines[0]


def agent(state: str, ago: int, reason: str = "", code: int | None = None) -> AgentState:
    return AgentState(state, NOW - timedelta(seconds=ago), reason, exit_code=code)


def test_the_agent_column_says_who_needs_you_first() -> None:
    ws = (*(worker(i) for i in range(6)), worker(6, "exited", code=137))
    agents = {
        ws[0].name: agent("working", 5, "Bash"),
        ws[1].name: agent("idle", 9, "turn done"),
        ws[3].name: agent("waiting", 30, "permission: Bash"),
        ws[4].name: agent("waiting", 60, "a question"),
        ws[6].name: AgentState("exited", NOW, "out of memory", exit_code=137, oom=True),
    }
    st = Snapshot(NOW, Health(True), ws, agents=agents, max_rows=3)
    for width in (80, 120):
        lines = text(st, width=width)
        assert lines[0].startswith("hal-9000  2 need you · 6 running, 1 stopped"), lines[0]
        # the two waiting rows come first (the oldest wait first), then the running
        assert "waiting 1m a question" in lines[2] or "waiting 1m a…" in lines[2], lines
        assert "waiting" in lines[3] and ws[3].name[:6] in lines[3]
        assert "waiting" not in lines[4]
    out = "\n".join(text(Snapshot(NOW, Health(True), ws, agents=agents), width=160))
    assert "waiting 30s permission: Bash" in out  # how long it has waited for you
    assert "working Bash" in out and "idle turn done" in out
    assert "exited 137 (OOM) out of memory" in out
    row = next(line for line in out.splitlines() if ws[2].name in line)
    assert " - " in row  # a worker whose agent has said nothing yet


def test_waiting_rows_are_bold_and_their_state_red() -> None:
    ws = (worker(1), worker(2))
    st = Snapshot(NOW, Health(True), ws, agents={ws[1].name: agent("waiting", 3, "permission")})
    console = Console(width=120, height=24, file=io.StringIO(), force_terminal=True)
    console.print(render(st, 24, 120))
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    waiting = next(line for line in raw.splitlines() if ws[1].name in line)
    other = next(line for line in raw.splitlines() if ws[0].name in line)
    assert "\x1b[1m" in waiting and "\x1b[1m" not in other  # bold
    assert "\x1b[1;31m" in waiting  # the state, bold red


@pytest.mark.parametrize(
    ("reason", "tail"),
    [
        ("[bold red]fake[/] \x1b[2J\x1b]0;owned\x07gone", "gone"),
        ("[link=file:///etc]x[/link]\r\nrow", "row"),
    ],
)
def test_a_reason_is_shown_literally_never_as_markup_or_escapes(reason: str, tail: str) -> None:
    """The reason is the worker's own text: rich markup shows as typed; escape sequences,
    bells and newlines never reach the terminal."""
    w = worker(1)
    # straight into the state (no from_json, which cleans too): the view cleans it itself
    st = Snapshot(NOW, Health(True), (w,), agents={w.name: agent("waiting", 1, reason)})
    console = Console(width=200, height=24, file=io.StringIO(), force_terminal=True)
    console.print(render(st, 24, 200))
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    plain = "\n".join(text(st, width=200))
    visible = reason.split("\x1b")[0].split("\r")[0]
    assert visible in plain  # `[bold red]fake[/]` as typed
    for bad in ("\x1b[2J", "\x1b]0;", "\x07", "owned\x07"):
        assert bad not in raw
    assert "\r" not in raw
    row = next(line for line in plain.splitlines() if w.name in line)
    assert visible in row and tail in row  # one row: nothing broke it


def test_each_worker_s_claude_code_and_outdated_when_a_restart_gives_another() -> None:
    """A wide pane has a `claude` column: the version each worker mounts, `outdated` when a
    newer one is installed (the snapshot's target); the state says `outdated` too."""
    from dataclasses import replace

    ws = (replace(worker(1), claude="2.1.332"), replace(worker(2), claude="2.1.334"))
    st = Snapshot(NOW, Health(True), ws, template="t1", claude="2.1.334")
    rows = {line.split()[0]: line for line in text(st, width=140) if line.startswith("proj-")}
    assert "2.1.332 outdated" in rows[ws[0].name] and " outdated " in rows[ws[0].name]
    assert "2.1.334" in rows[ws[1].name] and "outdated" not in rows[ws[1].name]
    assert Snapshot.from_json(st.to_json()) == st  # the loop publishes it, the dashboard reads
    narrow = {line.split()[0]: line for line in text(st) if line.startswith("proj-")}
    assert "outdated" in narrow[ws[0].name] and "outdated" not in narrow[ws[1].name]


def test_services_waiting_for_their_image_are_not_shown_as_faults() -> None:
    """A first run: the services image builds on the host; the line says so, no hint."""
    from rich.console import Console

    from parent_agent.core.model import ServiceState

    detail = "waiting for image hal9000/services:latest: building on the host since 16:20"
    services = (
        ServiceState("chromadb", False, "waiting", detail, 8000),
        ServiceState("chroma-mcp", False, "waiting", detail, 8811, True),
    )
    st = Snapshot(now=datetime.now(UTC), health=Health(engine_ok=True), services=services)
    console = Console(width=120, height=12, record=True)
    console.print(render(st, 12, 120))
    lines = console.export_text().splitlines()
    (line,) = [ln for ln in lines if ln.startswith("services")]
    assert line.startswith("services … chromadb waiting for image  … chroma-mcp waiting for image")
    assert "✗" not in line and not any("says why" in ln for ln in lines)


def test_a_workers_ports_show_with_their_host_ports() -> None:
    from hal_common.protocol import PortRow

    a, b = worker(1), worker(2)
    rows = (
        PortRow(a.name, 3000, "http://127.0.0.1:47100", 47100),
        PortRow(b.name, 3000, None, None, "full"),
    )
    lines = text(Snapshot(NOW, Health(engine_ok=True), workers=(a, b), ports=rows), width=120)
    assert "ports" in lines[1]
    assert "3000→:47100" in next(line for line in lines if a.name in line)
    assert "3000→?" in next(line for line in lines if b.name in line)
    plain = text(Snapshot(NOW, Health(engine_ok=True), workers=(a,)), width=120)
    assert "ports" not in plain[1]  # no worker lists ports: no column


def test_tasks_sit_under_their_repository() -> None:
    """A repository's tasks come right after its own worker, marked; a group whose task
    needs you comes first."""
    from dataclasses import replace

    app = replace(worker(1), name="app-0123abcd", project="/home/u/src/app")
    t1, t2 = (
        replace(worker(i), name=f"{n}-0123abcd", project=f"/home/u/src/app/.hal9000/tasks/{n}",
                task=n, repo="/home/u/src/app")
        for i, n in ((2, "zeta"), (3, "alpha"))
    )  # fmt: skip
    other = replace(worker(4), name="aaa-0123abcd", project="/home/u/src/aaa")
    snap = Snapshot(NOW, Health(True, True), (t1, other, t2, app), frozenset())
    lines = [line for line in text(snap, width=140) if "0123abcd" in line]
    assert [line.split()[0] for line in lines] == ["aaa-0123abcd", "app-0123abcd", "└", "└"]
    assert "alpha-0123abcd" in lines[2] and "task alpha in /home/u/src/app" in lines[2]
    assert "zeta-0123abcd" in lines[3]
    waiting = AgentState("waiting", NOW, "permission: Bash")
    snap = replace(snap, agents={"zeta-0123abcd": waiting})
    lines = [line for line in text(snap, width=140) if "0123abcd" in line]
    assert "app-0123abcd" in lines[0] and "zeta-0123abcd" in lines[1]  # its group first
