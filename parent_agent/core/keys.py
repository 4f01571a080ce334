"""The parent's tmux prefix keys: a pure table from the `[keys]` config to tmux commands."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_KEYS: dict[str, str] = {
    "new_session": "N",
    "dashboard": "D",
    "stop": "X",
    "restart": "R",
    "shell": "S",
    "choose": "W",
    "stats": "T",
}

DESCRIPTIONS: dict[str, str] = {
    "new_session": "new session: pick a recent project or type a directory",
    "dashboard": "go to the dashboard",
    "stop": "stop this window's worker (asks first)",
    "restart": "restart this window's worker",
    "shell": "open a shell in this window's worker",
    "choose": "choose a worker from a list",
    "stats": "live CPU / memory of all workers (popup)",
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


def status_text(running: int, stopped: int) -> str:
    """The status line's worker counts."""
    return f"{running} running · {stopped} stopped"


def display(command: tuple[str, ...]) -> str:
    return shlex.join(command)
