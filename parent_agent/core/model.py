"""The parent's pure model: what the engine says about workers and services, as values.

Adapters build these from the engine's data; the loop, the views and the commands read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hal_common import labels
from hal_common.ports import parse_ports
from hal_common.protocol import ServiceRow


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
    oom: bool = False  # the kernel killed a process of it for memory (State.OOMKilled)
    memory: int = 0  # limits: bytes, nano-CPUs, pids (0 = none)
    nano_cpus: int = 0
    pids: int = 0
    template: str = ""
    pid: int = 0  # the worker's init process, as the parent sees it (0 when not running)
    claude: str = ""  # the Claude Code version it mounts ("": made before the store)
    ports: tuple[int, ...] = ()  # its `[worker] ports` as made (the label: no worker writes it)
    task: str = ""  # a task's worker: the task's name, its repository's root, its base commit
    repo: str = ""
    base: str = ""


def to_worker(attrs: Mapping[str, Any]) -> Worker:
    """A Worker from the engine's inspect data of its container."""
    lab = (attrs.get("Config") or {}).get("Labels") or {}
    state = attrs.get("State") or {}
    host = attrs.get("HostConfig") or {}
    name = str(attrs.get("Name") or "").lstrip("/")
    return Worker(
        name=lab.get(labels.SESSION, name),
        container=name,
        project=lab.get(labels.PROJECT, ""),
        image=lab.get(labels.IMAGE, ""),
        state=state.get("Status", "unknown"),
        started_at=parse_time(state.get("StartedAt")),
        created=parse_time(attrs.get("Created")),
        finished_at=parse_time(state.get("FinishedAt")),
        exit_code=int(state.get("ExitCode") or 0),
        oom=bool(state.get("OOMKilled")),
        memory=int(host.get("Memory") or 0),
        nano_cpus=int(host.get("NanoCpus") or 0),
        pids=int(host.get("PidsLimit") or 0),
        template=lab.get(labels.TEMPLATE, ""),
        pid=int(state.get("Pid") or 0),
        claude=lab.get(labels.CLAUDE, ""),
        ports=parse_ports(lab.get(labels.PORTS, "")),
        task=lab.get(labels.TASK, ""),
        repo=lab.get(labels.REPO, ""),
        base=lab.get(labels.BASE, ""),
    )


def parse_time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python takes microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}").replace(tzinfo=UTC)


# One service's health: the row `services --json` prints (hal_common.protocol) is the model's.
ServiceState = ServiceRow


@dataclass(frozen=True)
class Listed:
    """One container as the engine's list call gives it: no inspect behind it."""

    id: str
    name: str
    state: str  # running, exited, created, restarting, ...
    status: str  # the engine's text: "Up 5 minutes", "Exited (0) 2 hours ago"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def session(self) -> str:
        return self.labels.get(labels.SESSION, "")


def to_listed(summary: Mapping[str, Any]) -> Listed:
    """A Listed from one entry of the engine's container list."""
    names = summary.get("Names") or []
    return Listed(
        id=str(summary.get("Id", "")),
        name=str(names[0]).lstrip("/") if names else "",
        state=str(summary.get("State", "")),
        status=str(summary.get("Status", "")),
        labels=dict(summary.get("Labels") or {}),
    )


@dataclass(frozen=True)
class ContainerEvent:
    """A change to one of our containers, from the engine's event stream."""

    action: str  # start, die, destroy, rename, ...
    session: str
    role: str
    exit_code: int = 0


def to_event(raw: Mapping[str, Any]) -> ContainerEvent:
    """A ContainerEvent from one decoded entry of the engine's event stream."""
    attrs = (raw.get("Actor") or {}).get("Attributes") or {}
    return ContainerEvent(
        action=str(raw.get("Action", "")),
        session=attrs.get(labels.SESSION, ""),
        role=attrs.get(labels.ROLE, labels.ROLE_WORKER),
        exit_code=int(attrs.get("exitCode", "0") or 0),
    )


@dataclass(frozen=True)
class Failure:
    """One thing that went wrong in an action over many containers."""

    name: str  # the container, worker or service it concerns
    message: str  # the whole line to report


@dataclass(frozen=True)
class Outcome:
    """What an action over many containers did: where it succeeded and what failed."""

    done: tuple[str, ...] = ()
    failed: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed

    def messages(self) -> tuple[str, ...]:
        return tuple(f.message for f in self.failed)
