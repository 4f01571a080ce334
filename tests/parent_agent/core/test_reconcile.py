"""The plan: which windows to make and which to kill."""

from __future__ import annotations

from parent_agent.core.model import Worker
from parent_agent.core.reconcile import EnsureWindow, KillWindow, plan


def _w(name: str, state: str) -> Worker:
    return Worker(name, f"hal9000-w-{name}", f"/p/{name}", "img", state, None, None)


def test_plan_removes_windows_of_stopped_workers_and_restores_on_fresh_session() -> None:
    workers = [_w("a", "running"), _w("b", "exited"), _w("c", "running")]
    assert plan(workers, {"a", "b"}, session_fresh=False) == [KillWindow("b")]
    assert plan(workers, set(), session_fresh=True) == [
        EnsureWindow("a", "hal9000-w-a"),
        EnsureWindow("c", "hal9000-w-c"),
    ]
    assert plan(workers, {"a", "c"}, session_fresh=True) == []
