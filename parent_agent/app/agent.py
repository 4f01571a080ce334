"""`hal-agent run`: one loop owns the state; threads only put typed events on its inbox."""

from __future__ import annotations

import logging
import queue
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from hal_common import labels, paths
from hal_common.config import Config
from hal_common.config_diff import diff
from hal_common.errors import HalError
from hal_common.shared_services import running as running_services
from parent_agent.adapters import services as services_mod
from parent_agent.adapters import workers
from parent_agent.adapters.config_watch import ConfigChanged, ConfigRejected, ConfigWatcher
from parent_agent.adapters.control import ControlServer, Reply
from parent_agent.adapters.dockerd import Dockerd
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.status_file import StatusFile
from parent_agent.adapters.tmux import TmuxUI, server_for
from parent_agent.app.service_runner import (
    ApplyServices,
    RestartServices,
    ServiceRunner,
    ServicesDone,
)
from parent_agent.core import control
from parent_agent.core import services as services_core
from parent_agent.core.keys import bindings, duplicates, status_text
from parent_agent.core.model import Outcome
from parent_agent.core.reconcile import EnsureWindow, KillWindow, plan
from parent_agent.core.tmux import worker_window_command

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between liveness checks of the tmux server
MAX_DOCKERD_RESTARTS = 5


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
)


def _watch_dockerd(dockerd: Dockerd, inbox: queue.Queue[Event]) -> None:
    inbox.put(DockerdExited(dockerd.wait()))


def _watch_events(engine: InnerEngine, inbox: queue.Queue[Event]) -> None:
    # only what changes the picture: every `docker exec` into a worker is an event too, and a
    # reconcile per exec would list (and inspect) every worker each time
    for ev in engine.events(["start", "die", "destroy", "rename"]):  # ends with the engine
        inbox.put(WorkerEvent(ev.action, ev.session, ev.exit_code, ev.role))


class Agent:
    def __init__(
        self,
        cfg: Config,
        dockerd: Dockerd | None = None,
        ui: TmuxUI | None = None,
        config_path: Path | None = None,
        status: StatusFile | None = None,
        control_socket: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.dockerd = dockerd or Dockerd()
        self.ui = ui or TmuxUI(server_for())
        self.inbox: queue.Queue[Event] = queue.Queue()
        self.engine: InnerEngine | None = None
        self.restarts = 0
        self.status_file = status or StatusFile()
        self.status = ""
        self.session_fresh = False  # the tmux session was (re)made; windows to restore
        self.list_workers = workers.WorkerLister()
        self.watcher = ConfigWatcher(
            config_path or paths.config_file(in_parent=True), self.inbox.put, watch=cfg.watch
        )
        # the only actor on service containers; it runs what this loop submits, in order
        self.services = ServiceRunner(self.inbox.put, paths.PARENT_CLAUDE_HOME)
        self.control = ControlServer(
            control_socket or paths.CONTROL_SOCK,
            lambda request, reply: self.inbox.put(ControlRequest(request, reply)),
        )

    def _start_engine(self) -> None:
        self.engine = self.dockerd.start()
        self.apply_services()  # in the runner: the loop is ready without waiting for it
        threading.Thread(target=_watch_dockerd, args=(self.dockerd, self.inbox),
                         name="dockerd-watch", daemon=True).start()  # fmt: skip
        threading.Thread(target=_watch_events, args=(self.engine, self.inbox),
                         name="docker-events", daemon=True).start()  # fmt: skip

    def record_error(self, text: str) -> None:
        """Log an error and keep it for the dashboard (the status file)."""
        log.error("%s", text)
        self.status_file.add_error(text)

    def record_failures(self, outcome: Outcome) -> None:
        for message in outcome.messages():
            self.record_error(message)

    def apply_config(self, new: Config) -> None:
        """A saved config: apply what can be applied live, flag what needs a restart."""
        changes = diff(self.cfg, new)
        self.cfg = new
        if not changes:
            return
        log.info("config reloaded", extra={"changes": str(changes)})
        if changes.worker_limits and self.engine is not None:
            self.record_failures(workers.update_limits(self.engine, new.worker))
        if changes.keys:
            self.apply_keys()
        if changes.log:
            logging.getLogger().setLevel(new.log.level.upper())
        if changes.watch:
            self.watcher.reconfigure(new.watch)
        if changes.restart_needed:
            self.status_file.need_restart(changes.restart_needed)
        svc = changes.services
        if (svc.enabled or svc.disabled or svc.changed) and self.engine is not None:
            self.apply_services()
        # worker_template: new workers read the file; running ones show as outdated.
        # dashboard: the dashboard reads the file itself.

    def service_plan(self) -> services_core.ServicePlan:
        return services_core.plan(self.cfg.services, services_mod.service_data())

    def apply_services(self, reply: Reply | None = None) -> None:
        """Have the runner start, recreate or remove the `[services.*]` containers; its
        errors come back as a ServicesDone and are reported only."""
        assert self.engine is not None  # noqa: S101 - callers check
        self.services.submit(ApplyServices(self.engine, self.service_plan(), reply))

    def on_request(self, ev: ControlRequest) -> None:
        """A command's request: refused here, or handed to the service runner (which answers
        through the ServicesDone it sends back)."""
        if self.engine is None:
            ev.reply.answer(control.Answer(False, "the inner engine is not running"))
        elif isinstance(ev.request, control.RestartServices):
            known = {s.name for s in running_services(self.cfg.services)}
            unknown = [n for n in ev.request.names if n not in known]
            if unknown:
                why = f"no enabled service {unknown[0]} (hal-agent services lists them)"
                ev.reply.answer(control.Answer(False, why))
                return
            job = RestartServices(self.engine, self.service_plan(), ev.request.names, ev.reply)
            self.services.submit(job)
        else:
            self.apply_services(ev.reply)

    def on_services_done(self, ev: ServicesDone) -> None:
        for err in ev.errors:
            self.record_error(err)
        reply = ev.job.reply
        if reply is None:
            return
        if ev.failed:
            reply.answer(control.Answer(False, ev.failed[0], ev.errors + ev.failed))
        else:
            reply.answer(control.Answer(True, errors=ev.errors))

    def apply_keys(self) -> None:
        binds = bindings({k: v for k, v in vars(self.cfg.keys).items() if isinstance(v, str)})
        for clash in duplicates(binds):
            self.record_error(f"[keys]: {clash}")
        self.ui.apply_keys(self.cfg.keys.prefix, binds)

    def reconcile(self, full: bool = True) -> None:
        """Windows and the status line from the workers the engine lists. Not `full` (a tick):
        only check that tmux is there, and go on to the engine when it had to be remade."""
        fresh = self.ui.ensure_session()
        if fresh:
            self.apply_keys()
        self.session_fresh = self.session_fresh or fresh
        if self.engine is None or not (full or self.session_fresh):
            return
        fresh, self.session_fresh = self.session_fresh, False
        try:
            found = self.list_workers(self.engine)
        except HalError as e:
            log.warning("reconcile skipped: %s", e)
            return
        running = sum(1 for w in found if w.state == "running")
        status = status_text(running, len(found) - running)
        if status != self.status:
            self.ui.set_status(status)
            self.status = status
        for action in plan(found, self.ui.window_names(), fresh):
            if isinstance(action, EnsureWindow):
                self.ui.ensure_window(action.session, worker_window_command(action.container))
            elif isinstance(action, KillWindow):
                self.ui.kill_window(action.session)

    def handle(self, ev: Event) -> bool:
        """Apply one event; False when the loop should end."""
        if isinstance(ev, Shutdown):
            log.info("shutting down", extra={"signal": ev.signum})
            return False
        if isinstance(ev, ConfigChanged):
            self.apply_config(ev.config)
        elif isinstance(ev, ServicesDone):
            self.on_services_done(ev)
        elif isinstance(ev, ControlRequest):
            self.on_request(ev)
        elif isinstance(ev, ConfigRejected):
            self.record_error(f"{ev.error}; keeping the last good config")
        if isinstance(ev, DockerdExited):
            self.record_error(f"the inner dockerd exited with code {ev.code}; restarting it")
            self.engine = None
        if isinstance(ev, WorkerEvent) and ev.action == "die" and ev.exit_code not in (0, 143):
            what = "service" if ev.role == "service" else "worker"
            self.record_error(f"{what} {ev.session} exited with code {ev.exit_code}")
        if (
            isinstance(ev, WorkerEvent)
            and ev.action == "start"
            and ev.role != "service"
            and self.engine is not None
        ):
            # a spawn that read the config just before a reload gets today's limits too
            self.record_failures(workers.update_limits(self.engine, self.cfg.worker, ev.session))
        if self.engine is None:
            self.restarts += 1
            if self.restarts > MAX_DOCKERD_RESTARTS:
                log.error("dockerd keeps dying; giving up (see %s)", paths.LOG_DIR)
                return False
            self._start_engine()
        # a tick only watches tmux; listing every worker each second would load the engine
        self.reconcile(full=not isinstance(ev, Tick))
        return True

    def install_signals(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self.inbox.put(Shutdown(signum))

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)

    def run(self) -> int:
        self.install_signals()
        paths.RUN_DIR.mkdir(parents=True, exist_ok=True)
        paths.PARENT_DATA.mkdir(parents=True, exist_ok=True)
        self.status_file.write()
        first = self.watcher.start()
        if isinstance(first, ConfigRejected):
            self.record_error(f"{first.error}; running on the defaults until a good save")
        self.reconcile()  # tmux and the dashboard first: they draw while dockerd starts
        self.services.start()
        self._start_engine()
        self.reconcile()
        self.control.start()  # before "ready": claudy's load-image asks the loop
        paths.READY_FILE.write_text("ready\n")
        log.info("parent ready")
        try:
            while True:
                try:
                    ev: Event = self.inbox.get(timeout=TICK)
                except queue.Empty:
                    ev = Tick()
                try:
                    if not self.handle(ev):
                        break
                except HalError as e:  # log, keep the last good state, go on
                    self.record_error(str(e))
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """In order: requests, the config watcher, the service runner, workers, then dockerd,
        then tmux."""
        paths.READY_FILE.unlink(missing_ok=True)
        self.control.stop()
        self.watcher.stop()
        self.services.stop()
        if self.engine is not None:
            try:
                workers.stop_all(self.engine)
            except HalError as e:
                log.error("stopping workers: %s", e)
        self.dockerd.stop()
        self.ui.kill_server()
        log.info("parent stopped")
