"""The dashboard's render: a pure function of a Status, checked without engines."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from parent_agent.core.model import Worker
from parent_agent.core.snapshot import Health, LoopError, Snapshot
from parent_agent.core.usage import Usage, cpu_percent, mem_used
from parent_agent.views.dashboard import render

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def worker(i: int, state: str = "running", template: str = "t1", code: int = 0) -> Worker:
    return Worker(f"proj-{i:02d}-0123abcd", f"hal9000-w-proj-{i:02d}", f"/home/u/src/proj-{i:02d}",
                  "hal9000/worker:minimal", state, NOW - timedelta(seconds=75 + i), NOW,
                  exit_code=code, template=template)  # fmt: skip


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
    shown = sum(1 for line in lines if "proj-" in line and "/home/u/src" in line)
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
    st = Snapshot(NOW, Health(True, images_ok=False), ws, frozenset({ws[1].name}),
                  errors=(error,), template="t1", restart_needed=("parent.memory",))  # fmt: skip
    out = "\n".join(text(st, width=120))
    assert "outdated" in out and "exited 137" in out
    assert "restart needed: parent.memory" in out
    assert "worker image missing" in out
    assert "worker x exited with code 137" in out
    assert out.count(" yes") == 1


@pytest.mark.parametrize("rows", [1, 5])
def test_max_rows_caps_the_list(rows: int) -> None:
    ws = tuple(worker(i) for i in range(10))
    lines = text(Snapshot(NOW, Health(True), ws, max_rows=rows))
    assert sum(1 for line in lines if "/home/u/src" in line) == rows


def test_cpu_and_memory_as_docker_stats_computes_them() -> None:
    prev = {"cpu_stats": {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000,
                          "online_cpus": 2}}  # fmt: skip
    cur = {"cpu_stats": {"cpu_usage": {"total_usage": 1_500}, "system_cpu_usage": 12_000,
                         "online_cpus": 2},
           "memory_stats": {"usage": 100, "stats": {"total_inactive_file": 30}}}  # fmt: skip
    assert cpu_percent(None, cur) is None
    assert cpu_percent(prev, cur) == pytest.approx(50.0)
    assert mem_used(cur) == 70


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


def test_the_snapshot_round_trips_through_its_json() -> None:
    from parent_agent.core.model import ServiceState

    ws = (worker(1), worker(2, "exited", code=3))
    snap = Snapshot(NOW, Health(True, False, 5 << 30), ws, frozenset({ws[0].name}),
                    {ws[0].name: Usage(1.5, 10, 20, 3, 0, 0, 0, 0)},
                    (LoopError(NOW.isoformat(), "x"),), "t1", ("parent.cpus",), 7,
                    (ServiceState("chromadb", True, "ok", ":8000", 8000),), 0.5)  # fmt: skip
    assert Snapshot.from_json(snap.to_json()) == snap
    for junk in ("", "[]", '{"version": 99}', '{"version": 1}'):
        with pytest.raises(ValueError):
            Snapshot.from_json(junk)


def test_the_dashboard_draws_what_the_loop_published_and_says_when_it_cannot(
    tmp_path: Path,
) -> None:
    """No snapshot yet: starting. A snapshot: drawn at today's clock. An old one: the loop is
    silent, said in red. Unreadable ones (garbage, too big, a link) are as none."""
    from parent_agent.adapters import snapshot_file
    from parent_agent.commands.dashboard import current

    path = tmp_path / "status.json"
    assert current(path, NOW).health.starting
    snapshot_file.publish(path, Snapshot(NOW, Health(True), (worker(1),)))
    later = NOW + timedelta(seconds=3)
    drawn = current(path, later)
    assert drawn.now == later and drawn.health.engine_ok and len(drawn.workers) == 1
    silent = current(path, NOW + timedelta(seconds=60))
    assert silent.health.stale_s == 60 and "AGENT LOOP SILENT for 60s" in text(silent)[0]
    path.write_text("{not json")
    assert current(path, NOW).health.starting
    path.unlink()
    (tmp_path / "elsewhere.json").write_text(Snapshot(NOW, Health(True)).to_json())
    path.symlink_to(tmp_path / "elsewhere.json")
    assert snapshot_file.read(path) is None
