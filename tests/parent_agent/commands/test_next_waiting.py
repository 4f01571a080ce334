"""The next-waiting key, pressed in a real tmux client: it goes round the workers whose agent
needs the user, as the loop's published snapshot says (no engine needed: the windows run
`sleep`, the snapshot is written as the loop writes it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common.layout import ParentLayout
from hal_testing.agent import agent_env, environment
from parent_agent.adapters import snapshot_file
from parent_agent.adapters.tmux import TmuxUI, server_for
from parent_agent.core.agent_state import AgentState
from parent_agent.core.keys import bindings
from parent_agent.core.snapshot import Health, Snapshot

pytestmark = pytest.mark.tmux
NOW = datetime.now(UTC)


@pytest.fixture
def hal(parent_layout: ParentLayout) -> Iterator[TmuxUI]:
    """The parent's tmux as `hal-agent run` sets it up (session, keys), three worker
    windows; its panes and keys run `hal-agent` on `parent_layout`."""
    with environment(agent_env(parent_layout)):
        ui = TmuxUI(server_for(parent_layout.tmux_sock))
        ui.ensure_session()
        ui.apply_keys("C-b", bindings({}))
        for name in ("a-1", "b-2", "c-3"):
            ui.ensure_window(name, "sleep 300")
    yield ui
    ui.kill_server()


def _publish(layout: ParentLayout, agents: dict[str, AgentState]) -> None:
    snapshot_file.publish(layout.status_file, Snapshot(NOW, Health(True), agents=agents))


def _waiting(ago: int) -> AgentState:
    return AgentState("waiting", NOW - timedelta(seconds=ago), "permission: Bash")


def test_the_key_goes_round_the_waiting_workers(
    server: libtmux.Server, hal: TmuxUI, parent_layout: ParentLayout
) -> None:
    view = f"nw{uuid.uuid4().hex[:6]}"
    attach = f"env -u TMUX tmux -S {parent_layout.tmux_sock} new-session -t =hal -s {view}"
    term = server.new_session("term", x=120, y=30, window_command=attach).windows[0].panes[0]
    assert retry_until(lambda: bool(hal.server.cmd("list-clients").stdout), 10)

    def window() -> str:
        out = hal.server.cmd("list-clients", "-F", "#{window_name}").stdout
        return out[0] if out else ""

    def press() -> None:
        term.send_keys("C-b", enter=False, suppress_history=False)
        term.send_keys("A", enter=False, suppress_history=False)

    # no snapshot yet, then none waiting: said, and the window stays
    press()
    assert retry_until(lambda: "no agent needs you" in "\n".join(term.capture_pane()), 10)
    assert window() == "dashboard"
    _publish(parent_layout, {"a-1": AgentState("working", NOW), "c-3": _waiting(5)})
    press()
    assert retry_until(lambda: window() == "c-3", 10)
    # b-2 starts waiting before c-3 did: the round is oldest first, wrapping
    _publish(parent_layout, {"b-2": _waiting(60), "c-3": _waiting(5), "a-1": _waiting(1)})
    for expected in ("a-1", "b-2", "c-3", "a-1"):
        press()
        assert retry_until(lambda e=expected: window() == e, 10), (expected, window())  # type: ignore[misc]
