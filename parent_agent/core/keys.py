"""The parent's tmux prefix keys: a pure table from the `[keys]` config to tmux commands."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from parent_agent.core.agent_state import AgentState, need_you

DEFAULT_KEYS: dict[str, str] = {
    "new_session": "N",
    "dashboard": "D",
    "stop": "X",
    "restart": "R",
    "shell": "S",
    "choose": "W",
    "stats": "T",
    "next_waiting": "A",
    "diff": "G",
}

DESCRIPTIONS: dict[str, str] = {
    "new_session": "new session: pick a recent project or type a directory",
    "dashboard": "go to the dashboard",
    "stop": "stop this window's worker (asks first)",
    "restart": "restart this window's worker",
    "shell": "open a shell in this window's worker",
    "choose": "choose a worker from a list",
    "stats": "live CPU / memory of all workers (popup)",
    "next_waiting": "go to the next worker whose agent needs you",
    "diff": "what this window's task changed against its base (a paged diff, popup)",
}


@dataclass(frozen=True)
class Binding:
    action: str
    key: str
    command: tuple[str, ...]  # one tmux command, as argv after `bind-key -T prefix KEY`
    description: str


def _hal_key(action: str) -> tuple[str, ...]:
    # Formats are expanded by tmux when the key is pressed: the client and its window.
    cmd = f"hal-agent key {action} --client '#{{client_name}}' --window '#{{window_name}}'"
    return ("run-shell", "-b", cmd)


def command_for(action: str) -> tuple[str, ...]:
    if action == "dashboard":
        return ("select-window", "-t", ":=dashboard")
    return _hal_key(action.replace("_", "-"))


def bindings(keys: Mapping[str, str]) -> list[Binding]:
    """One binding per action; `keys` overrides DEFAULT_KEYS (missing actions keep theirs)."""
    merged = {**DEFAULT_KEYS, **{k: v for k, v in keys.items() if k in DEFAULT_KEYS}}
    return [
        Binding(action, key, command_for(action), DESCRIPTIONS[action])
        for action, key in merged.items()
    ]


def duplicates(binds: list[Binding]) -> list[str]:
    seen: dict[str, str] = {}
    clashes = []
    for b in binds:
        if b.key in seen:
            clashes.append(f"{b.key} is bound to both {seen[b.key]} and {b.action}")
        seen[b.key] = b.action
    return clashes


def status_text(running: int, stopped: int, waiting: int = 0) -> str:
    """The status line's worker counts: `2 need you · 5 running · 1 stopped` (the first
    part only while an agent waits for the user)."""
    counts = f"{running} running · {stopped} stopped"
    return f"{waiting} need you · {counts}" if waiting else counts


def display(command: tuple[str, ...]) -> str:
    return shlex.join(command)


def next_waiting(
    agents: Mapping[str, AgentState], windows: set[str], current: str
) -> tuple[str, int] | None:
    """The window the `next_waiting` key goes to from window `current`, and how many wait:
    the waiting workers with a window, oldest wait first, the one after `current` (wrapping
    round; the first when `current` is not one of them). None when no agent needs you."""
    order = [s for s in need_you(agents) if s in windows]
    if not order:
        return None
    at = order.index(current) + 1 if current in order else 0
    return order[at % len(order)], len(order)
