"""The dashboard pane hal-agent draws in its tmux session, on a real engine.

`hal-agent` runs as a subprocess, as a user types it, its paths pointed (HAL_* variables) at a
temporary ParentLayout: the test engine for the inner one, a private tmux server."""

from __future__ import annotations

import pytest
from libtmux.test.retry import retry_until

from hal_testing.agent import AgentCommands

pytestmark = [pytest.mark.docker, pytest.mark.tmux]


def test_dashboard_pane_shows_the_workers(hal_agent: AgentCommands) -> None:
    proj = hal_agent.project("dash")
    name = hal_agent.ok("spawn", str(proj), "--no-attach").strip()

    def screen() -> str:
        return "\n".join(hal_agent.tmux("capture-pane", "-p", "-S", "-", "-t", "=hal:=dashboard.0"))

    ok = retry_until(lambda: name in screen() and "engine up" in screen(), 20, raises=False)
    assert ok, screen()
    status = hal_agent.tmux("show-options", "-gqv", "@hal-status")
    assert status == [] or "running" in status[0]
