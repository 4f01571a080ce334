"""What the loop should change: a pure plan from what the engine and tmux show."""

from __future__ import annotations

from dataclasses import dataclass

from parent_agent.core.model import Worker


@dataclass(frozen=True)
class EnsureWindow:
    session: str
    container: str


@dataclass(frozen=True)
class KillWindow:
    session: str


Action = EnsureWindow | KillWindow


def plan(workers: list[Worker], windows: set[str], session_fresh: bool) -> list[Action]:
    """Windows follow running workers.

    A window whose worker no longer runs goes. A running worker gets a window back only when
    the tmux session was (re)created: a window the user closed stays closed until they attach,
    while the agent keeps running in its worker.
    """
    running = {w.name: w for w in workers if w.state == "running"}
    actions: list[Action] = [KillWindow(name) for name in sorted(windows - running.keys())]
    if session_fresh:
        actions += [
            EnsureWindow(name, w.container)
            for name, w in sorted(running.items())
            if name not in windows
        ]
    return actions
