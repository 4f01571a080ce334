"""The prefix keys' table, the status line's counts and where the next-waiting key goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parent_agent.core.agent_state import AgentState
from parent_agent.core.keys import DESCRIPTIONS, bindings, next_waiting, status_text

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_status_text_says_how_many_need_you_only_when_some_do() -> None:
    assert status_text(5, 1) == "5 running · 1 stopped"
    assert status_text(5, 1, 0) == "5 running · 1 stopped"
    assert status_text(5, 1, 2) == "2 need you · 5 running · 1 stopped"


def test_next_waiting_is_bound_to_a_by_default_and_can_be_moved() -> None:
    (b,) = [b for b in bindings({}) if b.action == "next_waiting"]
    assert b.key == "A" and b.description == DESCRIPTIONS["next_waiting"]
    assert b.command == (
        "run-shell",
        "-b",
        "hal-agent key next-waiting --client '#{client_name}' --window '#{window_name}'",
    )
    (moved,) = [b for b in bindings({"next_waiting": "M-w"}) if b.action == "next_waiting"]
    assert moved.key == "M-w"


def _waiting(ago: int) -> AgentState:
    return AgentState("waiting", NOW - timedelta(seconds=ago), "permission")


def test_next_waiting_goes_round_the_waiting_oldest_first() -> None:
    agents = {
        "a": _waiting(10),
        "b": AgentState("working", NOW, "Bash"),
        "c": _waiting(30),  # waited longest
        "d": _waiting(20),
        "e": _waiting(40),  # waits, but has no window: cannot be shown
    }
    windows = {"a", "b", "c", "d"}
    assert next_waiting(agents, windows, "dashboard") == ("c", 3)  # from elsewhere: the oldest
    assert next_waiting(agents, windows, "b") == ("c", 3)
    assert next_waiting(agents, windows, "c") == ("d", 3)
    assert next_waiting(agents, windows, "d") == ("a", 3)
    assert next_waiting(agents, windows, "a") == ("c", 3)  # round again
    assert next_waiting({"a": _waiting(1)}, {"a"}, "a") == ("a", 1)
    assert next_waiting({"b": agents["b"]}, windows, "a") is None
    assert next_waiting({}, set(), "") is None
