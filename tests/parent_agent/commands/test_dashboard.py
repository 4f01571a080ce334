"""`hal-agent dashboard`: what it draws of the snapshot the loop published, and the pane it
runs in, on a real engine with the real loop publishing.

In the live test the loop runs in-process (the harness's `agent_loop`, the test engine standing
in for the inner one), on a temporary ParentLayout; `hal-agent` runs as a subprocess, as a user
types it, told that layout by HAL_* variables, as is the dashboard in the loop's tmux pane."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import pytest
from libtmux.test.retry import retry_until
from rich.console import Console

from hal_testing.agent import AgentCommands, AgentLoop
from hal_testing.config_text import NO_BUILTIN_SERVICES as NO_BUILTIN
from hal_testing.engine import Projects
from parent_agent.adapters import snapshot_file
from parent_agent.commands.dashboard import current
from parent_agent.core.model import Worker
from parent_agent.core.snapshot import Health, Snapshot
from parent_agent.views.dashboard import render

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _worker(i: int) -> Worker:
    return Worker(
        f"proj-{i:02d}-0123abcd",
        f"hal9000-w-proj-{i:02d}",
        f"/home/u/src/proj-{i:02d}",
        "hal9000/worker:minimal",
        "running",
        NOW - timedelta(seconds=75 + i),
        NOW,
        template="t1",
    )


def _first_line(snapshot: Snapshot) -> str:
    console = Console(width=80, height=24, file=io.StringIO(), record=True)
    console.print(render(snapshot, 24, 80))
    return console.export_text().split("\n")[0]


def test_the_dashboard_draws_what_the_loop_published_and_says_when_it_cannot(
    tmp_path: Path,
) -> None:
    """No snapshot yet: starting. A snapshot: drawn at today's clock. An old one: the loop is
    silent, said in red. Unreadable ones (garbage, too big, a link) are as none."""
    path = tmp_path / "status.json"
    assert current(path, NOW).health.starting
    snapshot_file.publish(path, Snapshot(NOW, Health(True), (_worker(1),)))
    later = NOW + timedelta(seconds=3)
    drawn = current(path, later)
    assert drawn.now == later and drawn.health.engine_ok and len(drawn.workers) == 1
    silent = current(path, NOW + timedelta(seconds=60))
    assert silent.health.stale_s == 60 and "AGENT LOOP SILENT for 60s" in _first_line(silent)
    path.write_text("{not json")
    assert current(path, NOW).health.starting
    path.unlink()
    (tmp_path / "elsewhere.json").write_text(Snapshot(NOW, Health(True)).to_json())
    path.symlink_to(tmp_path / "elsewhere.json")
    assert snapshot_file.read(path) is None


@pytest.mark.docker
@pytest.mark.tmux
def test_dashboard_pane_shows_the_workers(
    agent_loop: Callable[[str], AgentLoop], dclient: docker.DockerClient, projects: Projects
) -> None:
    loop = agent_loop('[worker]\nmemory = "512m"\n\n[dashboard]\nrefresh = 0.5\n' + NO_BUILTIN)
    agent = AgentCommands.create(loop.layout, projects.root, dclient, config=None)
    proj = agent.project("dash")
    name = agent.ok("spawn", str(proj), "--no-attach").strip()

    def screen() -> str:
        return "\n".join(agent.tmux("capture-pane", "-p", "-S", "-", "-t", "=hal:=dashboard.0"))

    ok = retry_until(lambda: name in screen() and "engine up" in screen(), 20, raises=False)
    assert ok, f"{screen()}\npublished: {loop.published()}"
    status = agent.tmux("show-options", "-gqv", "@hal-status")
    assert status == [] or "running" in status[0]
