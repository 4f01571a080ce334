"""TmuxUI against a real tmux server (libtmux's fixture: a private socket, killed afterwards)."""

from __future__ import annotations

import libtmux
import pytest
from libtmux.test.retry import retry_until

from parent_agent.adapters.tmux import TmuxUI
from parent_agent.core.tmux import DASHBOARD

pytestmark = pytest.mark.tmux


def test_ensure_session_builds_the_dashboard_once(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    assert ui.ensure_session() is True
    assert ui.ensure_session() is False
    session = ui.session()
    assert session is not None
    assert [w.window_name for w in session.windows] == [DASHBOARD]
    assert len(session.windows[0].panes) == 2  # live list on top, a shell below


def test_windows_are_matched_exactly(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    assert ui.ensure_window("proj-1234abcd", "sleep 300") is True
    assert ui.ensure_window("proj-1234abcd", "sleep 300") is False
    assert ui.ensure_window("proj-1234abcd-x", "sleep 300") is True
    assert ui.window_names() == {"proj-1234abcd", "proj-1234abcd-x"}
    ui.kill_window("proj-1234abcd")  # must not take the longer name with it
    assert ui.window_names() == {"proj-1234abcd-x"}
    ui.kill_window("proj-1234abcd")  # gone already: nothing happens
    assert ui.window_names() == {"proj-1234abcd-x"}


def test_a_window_runs_its_command(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    ui.ensure_window("echo-00000000", "echo hal-window-marker; sleep 300")
    session = ui.session()
    assert session is not None
    window = session.windows.get(window_name="echo-00000000")
    assert window is not None
    pane = window.panes[0]
    assert retry_until(lambda: "hal-window-marker" in "\n".join(pane.capture_pane()), 5)


def test_kill_server_then_ensure_session_rebuilds(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    ui.ensure_session()
    ui.kill_server()
    assert not ui.alive()
    assert ui.window_names() == set()
    assert ui.ensure_session() is True
