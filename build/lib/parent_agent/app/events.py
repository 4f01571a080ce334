"""The loop's inbox: the typed events threads put there, and the threads that watch.

Threads decide nothing: the dockerd watcher, the engine's event stream, the config watcher,
the control socket, the service runner and the signal handlers only put one of these on the
agent loop's queue (`parent_agent/app/agent.py`), which alone acts on them.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass

from hal_common import labels
from parent_agent.adapters.agent_reports import AgentReport
from parent_agent.adapters.config_watch import ConfigChanged, ConfigRejected
from parent_agent.adapters.control import Reply
from parent_agent.adapters.dockerd import Dockerd
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app.service_runner import ServicesDone
from parent_agent.core import control


@dataclass(frozen=True)
class Shutdown:
    signum: int


@dataclass(frozen=True)
class DockerdExited:
    code: int


@dataclass(frozen=True)
class WorkerEvent:
    action: str
    session: str
    exit_code: int = 0
    role: str = labels.ROLE_WORKER  # or "service": the shared services send events too


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class TmuxChanged:
    """tmux's clients, windows or session changed, or its server went (TmuxWatch)."""


@dataclass(frozen=True)
class LoopNote:
    """A thread's error for the loop to record (it shows in the dashboard and `health`)."""

    text: str


@dataclass(frozen=True)
class ControlRequest:
    """A command asks the loop (over the control socket) and waits on `reply`."""

    request: control.Request
    reply: Reply


Event = (
    Shutdown
    | DockerdExited
    | WorkerEvent
    | Tick
    | ConfigChanged
    | ConfigRejected
    | ServicesDone
    | ControlRequest
    | AgentReport
    | LoopNote
    | TmuxChanged
)


def watch_dockerd(dockerd: Dockerd, inbox: queue.Queue[Event]) -> None:
    inbox.put(DockerdExited(dockerd.wait()))


def watch_events(engine: InnerEngine, inbox: queue.Queue[Event]) -> None:
    # only what changes the picture: every `docker exec` into a worker is an event too, and a
    # reconcile per exec would list (and inspect) every worker each time
    # `oom` comes just before the `die` of a worker the kernel killed for memory
    for ev in engine.events(["start", "die", "oom", "destroy", "rename"]):  # ends with the engine
        inbox.put(WorkerEvent(ev.action, ev.session, ev.exit_code, ev.role))
