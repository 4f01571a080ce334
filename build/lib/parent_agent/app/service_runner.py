"""The one thread that creates, recreates, restarts and removes service containers.

Only the agent loop gives it jobs (on engine start, on a config change, on a control
request), and it runs them one at a time, in order, so no two reconciles ever overlap.
Each finished job goes back to the loop as a `ServicesDone` event on its inbox. The loop
stays free meanwhile: creating a few containers takes about a second and a restart waits
for the service to stop, and neither should hold up tmux, config reloads or the first
readiness (a spawn waits for the MCP servers itself, see `services.wait_for_mcp`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hal_common.layout import ParentLayout
from parent_agent.adapters import claude_home, services
from parent_agent.adapters.control import Reply
from parent_agent.adapters.engine import InnerEngine
from parent_agent.core.control import Answer
from parent_agent.core.services import ServicePlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyServices:
    """Make the containers match `plan`, then tell workers about them (MCP, token)."""

    engine: InnerEngine
    plan: ServicePlan
    reply: Reply | None = None


@dataclass(frozen=True)
class RestartServices:
    """As ApplyServices (so a missing one is made), then restart the named ones."""

    engine: InnerEngine
    plan: ServicePlan
    names: tuple[str, ...]
    reply: Reply | None = None


Job = ApplyServices | RestartServices


@dataclass(frozen=True)
class ServicesDone:
    """A job finished: what went wrong reconciling (`errors`), which restarts failed."""

    job: Job
    errors: tuple[str, ...]
    failed: tuple[str, ...] = ()


class ServiceRunner:
    """Runs the loop's service jobs in one thread; `done` receives each result."""

    def __init__(self, done: Callable[[ServicesDone], None], layout: ParentLayout) -> None:
        self.done = done
        self.layout = layout
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="services", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the job at hand, drop the rest (their requesters hear why), join."""
        self._stopping.set()
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stopping.is_set():
                if job.reply is not None:
                    job.reply.answer(Answer(False, "the parent is shutting down"))
                continue
            try:
                result = self.run(job)
            except Exception as e:  # logged with its traceback: the thread must live on, answer
                log.exception("services: job failed")
                result = ServicesDone(job, (f"services: {e}",))
            self.done(result)

    def run(self, job: Job) -> ServicesDone:
        """One job, here and now (the thread's body; tests call it directly)."""
        errors = services.reconcile(job.engine, job.plan)
        try:
            claude_home.publish_services(self.layout, job.plan.mcp, services.shared_token(job.plan))
        except OSError as e:
            errors.append(f"services: cannot register them for workers: {e}")
        if isinstance(job, RestartServices):
            failed = services.restart(job.engine, job.names)
            return ServicesDone(job, tuple(errors), tuple(failed))
        return ServicesDone(job, tuple(errors))
