"""Pure views of workers: the `ls --json` schema and the `gc` plan."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hal_common.errors import UsageError
from parent_agent.core.agent_state import AgentState
from parent_agent.core.model import Worker

STOPPED = ("exited", "created", "dead")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def uptime_s(w: Worker, now: datetime) -> int:
    if w.state != "running" or w.started_at is None:
        return 0
    return max(0, int((now - w.started_at).total_seconds()))


def ls_row(
    w: Worker,
    now: datetime,
    windows: set[str],
    agent: AgentState | None = None,
    claude_target: str | None = None,
    git: GitState | None = None,
) -> dict[str, Any]:
    """One worker in `hal-agent ls --json` (the documented, stable schema); `agent`: what
    its Claude does, as the loop last published it (None: unknown); `claude_target`: the
    Claude Code version a restart would give it (None: none installed); `git`: its
    repository's state (None: not a git project, or git could not say)."""
    return {
        "name": w.name,
        "project": w.project,
        "state": w.state,
        "image": w.image,
        "created": w.created.isoformat() if w.created else None,
        "uptime_s": uptime_s(w, now),
        "window": w.name in windows,
        "limits": {
            "memory": w.memory or None,
            "cpus": (w.nano_cpus / 1e9) if w.nano_cpus else None,
            "pids": w.pids or None,
        },
        "agent": agent.to_json() if agent is not None else None,
        "claude": {
            "version": w.claude or None,
            "outdated": claude_target is not None and w.claude != claude_target,
        },
        "task": w.task or None,
        "repo": git.repo if git else (w.repo or None),
        "branch": git.branch if git else None,
        "base": (git.base if git else None) or (w.base or None),
        "ahead": git.ahead if git else None,
        "dirty": git.dirty if git else None,
    }


@dataclass(frozen=True)
class GitState:
    """`ls --json`'s git fields of one worker (app/tasks.state_of asks git for them)."""

    repo: str
    branch: str | None  # None: a detached HEAD
    base: str | None  # a task's base commit
    ahead: int | None  # commits on it past the base (tasks)
    dirty: bool | None  # uncommitted changes or untracked files


def parse_duration(text: str) -> timedelta:
    """'30m', '12h', '7d', '2w', '0s'."""
    m = _DURATION.match(text.strip())
    if not m:
        raise UsageError(f"not a duration: {text!r}", hint="use e.g. 30m, 12h, 7d, 2w")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True)
class GcItem:
    worker: Worker
    reason: str


def gc_plan(
    workers: list[Worker], now: datetime, older_than: timedelta, exists: Callable[[str], bool]
) -> list[GcItem]:
    """Stopped workers idle for longer than `older_than`, and stopped orphans (project gone).

    Running workers are never collected; only labelled workers are ever passed in.
    """
    plan = []
    for w in workers:
        if w.state not in STOPPED:
            continue
        if not exists(w.project):
            plan.append(GcItem(w, f"orphan: {w.project} no longer exists"))
            continue
        since = w.finished_at or w.created
        if since is not None and now - since >= older_than:
            plan.append(GcItem(w, f"stopped for {_ago(now - since)}"))
    return plan


def _ago(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"
