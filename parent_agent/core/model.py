"""The parent's pure model: what the engine says about workers and services, as values.

Adapters build these from the engine's data; the loop, the views and the commands read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Worker:
    """What the engine says about one worker (plain data for the reconciler and dashboard)."""

    name: str
    container: str
    project: str
    image: str
    state: str
    started_at: datetime | None
    created: datetime | None
    finished_at: datetime | None = None
    exit_code: int = 0
    memory: int = 0  # limits: bytes, nano-CPUs, pids (0 = none)
    nano_cpus: int = 0
    pids: int = 0
    template: str = ""
    pid: int = 0  # the worker's init process, as the parent sees it (0 when not running)


def parse_time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python takes microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}").replace(tzinfo=UTC)


@dataclass(frozen=True)
class ServiceState:
    name: str
    ok: bool
    state: str  # ok, disabled, missing, starting, exited, restarting
    detail: str = ""
    port: int | None = None
    mcp: bool = False
