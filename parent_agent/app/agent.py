"""`hal-agent run`: one loop owns the state; threads only put typed events on its inbox.

After every event and tick the loop publishes a snapshot of what it knows (workers, their
usage, the services' health, recent errors, keys waiting for a restart) for the dashboard and
`hal-agent health`: nobody else lists, samples or polls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from hal_common import claude_code
from hal_common.config import Config
from hal_common.config_diff import diff
from hal_common.errors import HalError, ImageMissing
from hal_common.layout import ParentLayout
from hal_common.shared_services import running as running_services
from parent_agent.adapters import agent_record, claude_home, claude_store, snapshot_file, workers
from parent_agent.adapters import services as services_mod
from parent_agent.adapters.agent_reports import AgentReport, ReportWatcher
from parent_agent.adapters.config_watch import ConfigChanged, ConfigRejected, ConfigWatcher
from parent_agent.adapters.control import ControlServer, Reply
from parent_agent.adapters.dashboard_pane import DashboardPane
from parent_agent.adapters.dockerd import Dockerd
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.notifier import Notifier
from parent_agent.adapters.tmux import TmuxUI, TmuxWatch, server_for
from parent_agent.adapters.usage import BackgroundSampler
from parent_agent.app import spawns
from parent_agent.app.boundary import Boundary
from parent_agent.app.events import (
    ControlRequest,
    DockerdExited,
    Event,
    LoopNote,
    Shutdown,
    Tick,
    TmuxChanged,
    WorkerEvent,
    watch_dockerd,
    watch_events,
)
from parent_agent.app.port_map import PortMap
from parent_agent.app.service_runner import (
    ApplyServices,
    RestartServices,
    ServiceRunner,
    ServicesDone,
)
from parent_agent.app.sessions import spawn
from parent_agent.core import agent_state, control
from parent_agent.core import services as services_core
from parent_agent.core.agent_state import EXITED, AgentState, HookEvent
from parent_agent.core.keys import bindings, duplicates, status_text
from parent_agent.core.model import Outcome, ServiceState, Worker
from parent_agent.core.reconcile import EnsureWindow, KillWindow, plan
from parent_agent.core.snapshot import MAX_ERRORS, Health, LoopError, Snapshot
from parent_agent.core.spec import template_hash
from parent_agent.core.tmux import worker_window_command
from parent_agent.core.usage import Usage
from parent_agent.views.frame import frame

log = logging.getLogger(__name__)

TICK = 1.0  # the wait when a timer is overdue (it could not run: no pane, a full disk...)
# What an idle parent does is bounded by these; everything else follows events (issue 13).
SERVICES_EVERY_S = 3.0  # the services' health (an inspect and a connect each), while it matters:
SERVICES_IDLE_S = 30.0  # every service well and nobody looking at the dashboard
LIST_IDLE_S = 60.0  # the workers' listing when nobody looks (events list them at once)
TMUX_CHECK_S = 30.0  # a safety net: TmuxWatch tells of the session and server at once
HEARTBEAT_S = 4.0  # an unchanged snapshot is written again this often (the dashboard's
# "AGENT LOOP SILENT" comes after 10 s without one)
LIMITS_GRACE_S = 600.0  # after a [worker] limits change, a started worker is updated too
MAX_DOCKERD_RESTARTS = 5  # in a row; an engine up for HEALTHY_S gets its budget back
HEALTHY_S = 300.0
BACKOFF_S = (0.5, 30.0)  # the first wait before restarting dockerd, and the longest
RECORD_EVERY_S = 1.0  # the agents' record is written at most this often (and at shutdown)


class Agent:
    def __init__(
        self,
        cfg: Config,
        layout: ParentLayout,
        dockerd: Dockerd | None = None,
        ui: TmuxUI | None = None,
    ) -> None:
        self.cfg = cfg
        self.layout = layout
        self.dockerd = dockerd or Dockerd(layout)
        self.ui = ui or TmuxUI(server_for(layout.tmux_sock))
        self.inbox: queue.Queue[Event] = queue.Queue()
        self.tmux_watch = TmuxWatch(layout.tmux_sock, lambda: self.inbox.put(TmuxChanged()))
        self.viewed = False  # a tmux client shows the dashboard window
        self.tmux_checked = 0.0
        self.published: Snapshot | None = None  # the last snapshot written, at EPOCH
        self.published_at = 0.0
        self.published_text = ""
        self.disk_free: int | None = None
        self.limits_changed_at: float | None = None
        self._template: tuple[object, str] = (None, "")
        self.shown: tuple[object, ...] = ()  # what show_agents last showed
        self.engine: InnerEngine | None = None
        self.status = ""
        self.session_fresh = False  # the tmux session was (re)made; windows to restore
        self.list_workers = workers.WorkerLister()
        self._claude_key: tuple[int, str] | None = None  # (store mtime, pin) of the target
        self._claude_target = ""
        self.watcher = ConfigWatcher(layout.config_file, self.inbox.put, watch=cfg.watch)
        # the only actor on service containers; it runs what this loop submits, in order
        self.services = ServiceRunner(self.inbox.put, layout)
        # the egress boundary: the workers' network, the proxy, the firewall, the gates
        self.boundary = Boundary(layout)
        # the workers' listed ports, each relayed from a host port of the published range
        self.ports = PortMap(layout)
        self.control = ControlServer(
            layout.control_socket,
            lambda request, reply: self.inbox.put(ControlRequest(request, reply)),
        )
        # what the snapshot shows
        self.workers: tuple[Worker, ...] = ()
        self.listed_at = 0.0
        self.errors: list[LoopError] = []
        self.restart_needed: set[str] = set()
        self.service_health: tuple[ServiceState, ...] = ()
        self.images_ok = True
        self.probed_at = 0.0
        self.sampler: BackgroundSampler | None = None
        # the engine's restart budget
        self.restarts = 0
        self.engine_up_at = 0.0
        self.retry_at = 0.0
        # what each worker's Claude is doing (its hooks, its container), kept across restarts
        record = agent_record.load(layout)
        self.agents: dict[str, AgentState] = dict(record.agents)
        self.ran: frozenset[str] = record.running  # the workers that ran, to bring back
        self.record_dirty = False
        self.recorded_at = 0.0
        self.record_failed = ""
        self.oom: set[str] = set()  # workers the kernel killed for memory (their `die` is next)
        self.want_window: set[str] = set()  # workers brought back: a window once they run
        self.reports = ReportWatcher(layout, self.inbox.put)
        self.notifier = Notifier(cfg.notify, on_error=lambda text: self.inbox.put(LoopNote(text)))
        # the dashboard's pane: the loop draws its snapshot there itself (see draw)
        self.pane = DashboardPane(layout.tmux_sock)
        self.drawn: tuple[Snapshot | None, tuple[int, int] | None, float] = (None, None, 0.0)

    def _start_engine(self) -> None:
        self.engine = self.dockerd.start()
        self.engine_up_at = time.monotonic()
        self.sampler = BackgroundSampler(self.engine, interval=1.0)
        self.start_boundary()  # before any worker: they are made on its network
        self.restore_worker_files()
        self.apply_services()  # in the runner: the loop is ready without waiting for it
        self.bring_back()
        threading.Thread(
            target=watch_dockerd,
            args=(self.dockerd, self.inbox),
            name="dockerd-watch",
            daemon=True,
        ).start()
        threading.Thread(
            target=watch_events, args=(self.engine, self.inbox), name="docker-events", daemon=True
        ).start()

    def start_boundary(self) -> None:
        """The workers' network, the proxy on its gateway and the firewall; what fails is
        reported (the dashboard and `hal-agent doctor` show it), and tried again on the next
        engine start."""
        assert self.engine is not None  # noqa: S101 - after the engine started
        flag = self.layout.unfenced_flag
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()  # fail closed: no worker starts until the boundary stands
        try:
            self.boundary.start(self.engine, self.cfg)
        except (HalError, OSError, ValueError) as e:
            self.record_error(f"the workers' egress boundary is not complete: {e}")
            return
        flag.unlink(missing_ok=True)

    def restore_worker_files(self) -> None:
        """What workers mount from the parent and a parent may lack (one made before these
        files existed, or a data volume restored): each worker's passwd and group, and
        hal-9000's managed settings. Written before any start or attach needs them."""
        assert self.engine is not None  # noqa: S101 - after the engine started
        try:
            claude_home.write_managed_settings(self.layout)
            workers.restore_identities(self.engine, self.layout)
        except (HalError, OSError) as e:
            self.record_error(f"workers' files not restored: {e}")
        self.write_resumes()

    def write_resumes(self) -> None:
        """Each worker's `resume` file: its last conversation's id (with `[worker] resume`),
        which its next start continues."""
        for session, state in self.agents.items():
            self.write_resume(session, state.session_id)

    def write_resume(self, session: str, session_id: str | None) -> None:
        try:
            workers.write_resume(
                self.layout, session, session_id if self.cfg.worker.resume else None
            )
        except OSError as e:
            self.record_error(f"{session}: its conversation id not saved for resume: {e}")

    def bring_back(self) -> None:
        """Start the workers that ran before this parent (or its engine) stopped, and those
        whose agent died unexpectedly: no `claudy` per project after a restart or a reboot.
        Each is a spawn, as `claudy DIR` would make it (the path policy, its Claude state,
        an outdated worker made afresh, the boundary, the project checked then mounted), in
        a thread of its own: the loop is ready meanwhile, and their windows come with their
        `start` events."""
        assert self.engine is not None  # noqa: S101 - after the engine started
        wanted = set(self.ran) | {s for s, a in self.agents.items() if agent_state.unexpected(a)}
        if not wanted:
            return
        self.want_window |= wanted
        threading.Thread(
            target=bring_back,
            args=(self.engine, self.cfg, self.layout, sorted(wanted), self.inbox.put),
            name="bring-back",
            daemon=True,
        ).start()

    def _engine_lost(self) -> None:
        """The engine is gone: forget it, and wait a little longer each time before the next
        start. An engine that stayed up for HEALTHY_S had a healthy period: a fresh budget."""
        self.engine = None
        if self.sampler is not None:
            self.sampler.close()
            self.sampler = None
        now = time.monotonic()
        if self.engine_up_at and now - self.engine_up_at >= HEALTHY_S:
            self.restarts = 0
        self.restarts += 1
        first, longest = BACKOFF_S
        self.retry_at = now + min(longest, first * 2 ** (self.restarts - 1))

    def _ensure_engine(self) -> bool:
        """Restart a lost engine when its backoff is over; False when it keeps dying."""
        if self.engine is not None:
            return True
        if self.restarts > MAX_DOCKERD_RESTARTS:
            log.error("dockerd keeps dying; giving up (see %s)", self.layout.log_dir)
            return False
        if time.monotonic() >= self.retry_at:
            try:
                self._start_engine()
            except HalError as e:
                self.record_error(f"the inner dockerd did not start: {e.message}")
                self._engine_lost()
        return True

    def record_error(self, text: str) -> None:
        """Log an error and keep it for the dashboard and `health` (the snapshot)."""
        log.error("%s", text)
        entry = LoopError(datetime.now(UTC).isoformat(), text)
        self.errors = [*self.errors, entry][-MAX_ERRORS:]

    def record_failures(self, outcome: Outcome) -> None:
        for message in outcome.messages():
            self.record_error(message)

    def apply_config(self, new: Config) -> None:
        """A saved config: apply what can be applied live, flag what needs a restart."""
        changes, old = diff(self.cfg, new), self.cfg
        self.cfg = new
        if new.worker.resume != old.worker.resume:
            self.write_resumes()  # read at each worker's next start
        if not changes:
            return
        log.info("config reloaded", extra={"changes": str(changes)})
        if changes.worker_limits:
            self.limits_changed_at = time.monotonic()
        if changes.worker_limits and self.engine is not None:
            self.record_failures(workers.update_limits(self.engine, new.worker))
        if changes.keys:
            self.apply_keys()
        if changes.log:
            logging.getLogger().setLevel(new.log.level.upper())
        if changes.watch:
            self.watcher.reconfigure(new.watch)
        if changes.restart_needed:
            self.restart_needed |= set(changes.restart_needed)
        if changes.services and self.engine is not None:
            self.apply_services()
        if changes.notify:
            self.notifier.configure(new.notify)
        if changes.network:
            try:  # the proxy decides every request from now on with the new list
                self.boundary.set_policy(new)
            except ValueError as e:
                self.record_error(f"[network]: {e}; keeping the last good list")
        # worker_template: new workers read the file; running ones show as outdated.
        # dashboard: the snapshot carries the new refresh and row count.

    def service_plan(self) -> services_core.ServicePlan:
        token = services_mod.ensure_token(self.layout.mcp_token_file)
        return services_core.plan(self.cfg.services, self.layout.service_data, token)

    def apply_services(self, reply: Reply | None = None) -> None:
        """Have the runner start, recreate or remove the `[services.*]` containers; its
        errors come back as a ServicesDone and are reported only. The gates follow the
        plan at once (a gate to a service still starting answers when it does)."""
        assert self.engine is not None  # noqa: S101 - callers check
        plan = self.service_plan()
        try:
            token = services_mod.ensure_token(self.layout.mcp_token_file)
            for problem in self.boundary.set_gates(plan.gates, token):
                self.record_error(f"service gate: {problem}")
        except (HalError, OSError) as e:
            self.record_error(f"the service gates are not in place: {e}")
        self.services.submit(ApplyServices(self.engine, plan, reply))

    def on_request(self, ev: ControlRequest) -> None:
        """A command's request: refused here, a spawn done in a thread of its own (which
        answers it), or handed to the service runner (which answers through the
        ServicesDone it sends back)."""
        if self.engine is None:
            # a spawn is then done by the command itself, which says why it cannot
            down = isinstance(ev.request, control.SpawnWorker)
            ev.reply.answer(control.Answer(False, "the inner engine is not running", fallback=down))
        elif isinstance(ev.request, control.SpawnWorker):
            spawns.serve(ev.request, self.engine, self.layout, ev.reply.answer)
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

    def adopt_session(self) -> None:
        """The tmux session `hal-agent run` made before it loaded this loop (to draw the
        dashboard sooner) is new to the loop as if it had made it: its keys, and the
        workers' windows to restore."""
        self.apply_keys()
        self.session_fresh = True

    def apply_keys(self) -> None:
        binds = bindings({k: v for k, v in vars(self.cfg.keys).items() if isinstance(v, str)})
        for clash in duplicates(binds):
            self.record_error(f"[keys]: {clash}")
        self.ui.apply_keys(self.cfg.keys.prefix, binds)

    def reconcile(self, full: bool = True, tmux: bool = True) -> None:
        """Windows and the status line from the workers the engine lists. Not `full` (a tick
        between listings): only check that tmux is there (`tmux`), and go on to the engine
        when it had to be remade."""
        fresh = self.ui.ensure_session() if tmux else False
        if tmux:
            self.tmux_checked = time.monotonic()
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
        self.workers, self.listed_at = tuple(found), time.monotonic()
        self.sync_agents(found)
        for problem in self.ports.apply(self.engine, found):
            self.record_error(f"ports: {problem}")
        for action in plan(found, self.ui.window_names(), fresh):
            if isinstance(action, EnsureWindow):
                command = worker_window_command(action.container, self.layout.inner_docker_host)
                self.ui.ensure_window(action.session, command)
            elif isinstance(action, KillWindow):
                self.ui.kill_window(action.session)
        for w in found:  # brought back (or restarted by policy): its window again
            if w.name in self.want_window and w.state == "running":
                self.want_window.discard(w.name)
                command = worker_window_command(w.container, self.layout.inner_docker_host)
                self.ui.ensure_window(w.name, command)

    def _listing_due(self) -> bool:
        """A tick lists the workers once per `[dashboard].refresh` while the dashboard is
        looked at (one list call, inspects only of what changed), else every LIST_IDLE_S:
        the engine's events list them at once whenever one starts, stops or goes."""
        return time.monotonic() - self.listed_at >= self._list_every()

    def _list_every(self) -> float:
        return self.cfg.dashboard.refresh if self.viewed else LIST_IDLE_S

    def _tmux_due(self) -> bool:
        return time.monotonic() - self.tmux_checked >= TMUX_CHECK_S

    def next_due(self) -> float:
        """Seconds until the first of the loop's own timers is due: the heartbeat, the
        dashboard's refresh while it is looked at, the agents' record, the listing, the
        probes, tmux's safety net, an engine's restart. An idle parent wakes for those alone
        (issue 13, row 11), at most HEARTBEAT_S apart; events wake it at once."""
        due = [self.published_at + HEARTBEAT_S, self.tmux_checked + TMUX_CHECK_S]
        if self.viewed:
            due.append(self.drawn[2] + self.cfg.dashboard.refresh)
        if self.record_dirty:
            due.append(self.recorded_at + RECORD_EVERY_S)
        if self.engine is None:
            due.append(self.retry_at)
        else:
            due += [self.listed_at + self._list_every(), self.probed_at + self._probe_every()]
        wait = min(due) - time.monotonic()
        return min(wait if wait > 0.01 else TICK, HEARTBEAT_S)

    def _probe_every(self) -> float:
        """Every SERVICES_EVERY_S while it shows or matters (the dashboard is looked at, a
        service is not well), else every SERVICES_IDLE_S; a service's event probes at once."""
        settled = all(s.ok or s.state == "disabled" for s in self.service_health)
        return (
            SERVICES_IDLE_S
            if settled and not self.viewed and self.images_ok
            else (SERVICES_EVERY_S)
        )

    def _probe(self) -> None:
        """The services' health, the worker image and the free disk, every `_probe_every`."""
        if self.engine is None or time.monotonic() - self.probed_at < self._probe_every():
            return
        self.probed_at = time.monotonic()
        free = disk_free(self.layout.inner_data_root)
        if free is None or self.disk_free is None or moved(self.disk_free, free):
            self.disk_free = free  # kept while about the same: no new snapshot for a byte
        try:
            found = services_mod.inspect_all(self.engine)
            self.service_health = tuple(
                services_core.states(
                    self.cfg.services,
                    found,
                    services_mod.port_open,
                    services_mod.waiting_for(self.engine, self.layout),  # image building
                )
            )
        except HalError as e:
            log.debug("services unknown: %s", e)
        try:
            workers.check_image(self.engine, self.cfg.worker.image, None)
            self.images_ok = True
        except ImageMissing:
            self.images_ok = False
        except HalError as e:
            log.debug("worker image unknown: %s", e)

    def template(self) -> str:
        """The worker template's hash, computed again only when the config changed."""
        if self._template[0] is not self.cfg.worker:
            self._template = (self.cfg.worker, template_hash(self.cfg.worker))
        return self._template[1]

    def snapshot(self) -> Snapshot:
        up = self.engine is not None
        running = [w for w in self.workers if w.state == "running"]
        usage: dict[str, Usage] = {}
        if self.sampler is not None:  # the figures are for the dashboard: only while seen
            usage = self.sampler.want(running) if self.viewed else self.sampler.pause()
        health = Health(
            engine_ok=up,
            images_ok=self.images_ok,
            disk_free=self.disk_free,
            starting=not up and self.restarts == 0,
        )
        return Snapshot(
            now=datetime.now(UTC),
            health=health,
            workers=self.workers if up else (),
            windows=frozenset(self.ui.known_windows()),
            usage=usage,
            errors=tuple(self.errors),
            template=self.template(),
            restart_needed=tuple(sorted(self.restart_needed)),
            max_rows=self.cfg.dashboard.max_rows,
            services=self.service_health if up else (),
            refresh=self.cfg.dashboard.refresh,
            last_denial=self.boundary.last_denial,
            agents=dict(self.agents) if up else {},
            claude=self.claude_target(),
            viewed=self.viewed,
            ports=self.ports.rows if up else (),
        )

    def claude_target(self) -> str:
        """The Claude Code version a restart gives ("" when none is installed): the store is
        read again only when its directory changed (an install renames a version into it)."""
        store = self.layout.claude_store
        try:
            stamp = store.stat().st_mtime_ns
        except OSError:
            stamp = 0
        key = (stamp, self.cfg.claude.version)
        if key != self._claude_key:
            have = [i.version for i in claude_store.installed(store)]
            self._claude_key = key
            self._claude_target = claude_code.target(self.cfg.claude.version, have) or ""
        return self._claude_target

    def publish(self, force: bool = False) -> None:
        """The snapshot, when it differs from the last one written (its clock aside), or
        every HEARTBEAT_S: the dashboard and `ls` read that the loop is alive."""
        snap = self.snapshot()
        self.draw(snap)
        body = dataclasses.replace(snap, now=EPOCH)
        now = time.monotonic()
        same = body == self.published
        if not force and same and now - self.published_at < HEARTBEAT_S:
            return
        try:
            text = ""
            if same and self.published_text:  # a heartbeat: the last text, its clock moved
                with contextlib.suppress(ValueError):
                    text = snapshot_file.restamp(self.published_text, snap.now)
            text = text or snap.to_json()
            snapshot_file.publish_text(self.layout.status_file, text)
        except OSError as e:  # a full disk must not stop the loop; the dashboard says stale
            log.warning("cannot publish the snapshot: %s", e)
            return
        self.published, self.published_at, self.published_text = body, now, text

    def on_tmux_changed(self) -> None:
        """A client came, went or changed window, a window opened or closed, or the session
        (or the server) went: the windows and whether the dashboard is looked at, again."""
        self.reconcile(full=False)  # the session again if it went (all its windows then)
        self.ui.window_names()
        viewed = self.ui.viewed()
        if viewed and not self.viewed:
            self.probed_at = 0.0  # fresh figures for who looks now
        self.viewed = viewed

    def draw(self, snap: Snapshot) -> None:
        """The snapshot, drawn into the dashboard's pane: at once when it (or the pane's
        size) changed, else, while a client shows it, once per `[dashboard].refresh`
        for the clock and the usage figures (they change with every sample)."""
        size = self.pane.size()
        if size is None:
            return  # no tmux yet, or its dashboard pane is being remade
        seen = dataclasses.replace(snap, now=EPOCH, usage={})
        last, last_size, at = self.drawn
        quiet = not snap.viewed or time.monotonic() - at < snap.refresh
        if seen == last and size == last_size and quiet:
            return
        self.pane.write(frame(snap, *size))
        if last is None:
            log.info("dashboard drawn")  # the first frame: a cold start's milestone
        self.drawn = (seen, size, time.monotonic())

    def handle(self, ev: Event) -> bool:
        """Apply one event; False when the loop should end."""
        match ev:
            case Shutdown(signum=signum):
                log.info("shutting down", extra={"signal": signum})
                return False
            case ConfigChanged(config=config):
                self.apply_config(config)
            case ConfigRejected(error=error):
                self.record_error(f"{error}; keeping the last good config")
            case ServicesDone():
                self.on_services_done(ev)
            case ControlRequest():
                self.on_request(ev)
            case DockerdExited(code=code):
                self.record_error(f"the inner dockerd exited with code {code}; restarting it")
                self._engine_lost()
            case AgentReport(session=session, events=events):
                self.on_report(session, events)
            case LoopNote(text=text):
                self.record_error(text)
            case TmuxChanged():
                self.on_tmux_changed()
            case WorkerEvent(action="oom", role=role, session=session) if role != "service":
                self.oom.add(session)
            case WorkerEvent(action="die", exit_code=code, role=role, session=session):
                if role != "service":
                    self.on_exit(session, code)
                elif code not in (0, 143):
                    self.record_error(f"service {session} exited with code {code}")
                if role == "service":
                    self.probed_at = 0.0  # its health now, not at the next idle probe
                self.boundary.refresh()
            case WorkerEvent(action="start", role=role, session=session) if (
                role != "service" and self.engine is not None
            ):
                self.set_agent(session, agent_state.on_start(self.agents.get(session), _now()))
                # a spawn that read the config just before a reload gets today's limits too
                # (none did when the limits have not changed lately: no update per start)
                changed = self.limits_changed_at
                if changed is not None and time.monotonic() - changed < LIMITS_GRACE_S:
                    self.record_failures(
                        workers.update_limits(self.engine, self.cfg.worker, session)
                    )
                self.boundary.refresh()  # its address, for the egress log
            case WorkerEvent(role=role) if role != "service":
                self.boundary.refresh()  # a worker stopped or went: its address is free
            case WorkerEvent(role="service", action="start"):
                self.probed_at = 0.0  # a service (re)started: its health soon
            case _:
                pass
        if isinstance(ev, WorkerEvent) and ev.role != "service":
            self.list_workers.forget(ev.session)  # inspected afresh by the listing below
        if not self._ensure_engine():
            return False
        # a tick lists the workers only when due (`_listing_due`); events from the engine,
        # the config and commands always do (not the agents' reports: they change no worker;
        # nor tmux's: on_tmux_changed did what they need). The tmux session is checked when
        # TmuxWatch tells of a change and, as a safety net, every TMUX_CHECK_S.
        quiet = isinstance(ev, Tick | AgentReport | LoopNote | TmuxChanged)
        self.reconcile(full=not quiet or self._listing_due(), tmux=self._tmux_due())
        self.show_agents()
        self._probe()
        self.save_record()
        self.publish()
        return True

    # -- the agents ------------------------------------------------------------------------

    def set_agent(self, session: str, state: AgentState) -> None:
        """The agent of `session` is now `state`: recorded, its resume id kept, and the user
        told when it starts needing them or dies (the notifier filters and debounces)."""
        old = self.agents.get(session)
        if old == state:
            return
        self.agents[session] = state
        self.record_dirty = True
        if state.session_id != (old.session_id if old else None):
            self.write_resume(session, state.session_id)
        if old is None or old.state != state.state or old.reason != state.reason:
            log.info("agent %s: %s %s", session, state.label(), state.reason)
            # [notify] on chooses among waiting, idle and exited; a stop the user asked for
            # (or a clean /exit) is no news
            if state.state != EXITED or agent_state.unexpected(state):
                self.notifier.notify(session, self.project_of(session), state)

    def on_report(self, session: str, events: tuple[HookEvent, ...]) -> None:
        """Hook events from the worker's own report directory (already bounded)."""
        state = self.agents.get(session)
        for ev in events:
            state = agent_state.on_hook(state, ev, _now())
        if state is not None:
            self.set_agent(session, state)

    def on_exit(self, session: str, code: int) -> None:
        oom = session in self.oom
        self.oom.discard(session)
        state = agent_state.on_exit(self.agents.get(session), code, oom, _now())
        self.set_agent(session, state)
        if agent_state.unexpected(state):
            self.record_error(f"worker {session}: the agent {state.label()}")
            self.want_window.add(session)  # `restart = "on-failure"` brings it back: its window

    def project_of(self, session: str) -> str:
        return next((w.project for w in self.workers if w.name == session), "")

    def sync_agents(self, found: list[Worker]) -> None:
        """The agents as the engine's list shows them: a worker that runs without a state
        is starting, one that stopped (while no event said so: the parent was down) exited;
        a removed worker's state goes. The set of running workers is recorded."""
        now = _now()
        names = {w.name for w in found}
        self.want_window &= names  # a worker removed meanwhile gets no window
        for gone in [s for s in self.agents if s not in names]:
            del self.agents[gone]
            self.notifier.forget(gone)
            self.record_dirty = True
        for w in found:
            current = self.agents.get(w.name)
            running = w.state == "running"
            if running and (current is None or current.state == EXITED):
                self.set_agent(w.name, agent_state.on_start(current, w.started_at or now))
            elif not running and (current is None or current.state != EXITED):
                since = w.finished_at or now
                self.set_agent(w.name, agent_state.on_exit(current, w.exit_code, w.oom, since))
        ran = frozenset(w.name for w in found if w.state == "running")
        if ran != self.ran:
            self.ran, self.record_dirty = ran, True

    def show_agents(self) -> None:
        """The status line (with how many need you) and each window's mark, when the
        workers or their agents changed since the last time."""
        shown = (self.workers, self.ui.window_ids(), dict(self.agents))
        if shown == self.shown:
            return
        self.shown = shown
        running = sum(1 for w in self.workers if w.state == "running")
        waiting = len(agent_state.need_you(self.agents))
        status = status_text(running, len(self.workers) - running, waiting)
        if status != self.status:
            self.ui.set_status(status)
            self.status = status
        self.ui.set_marks({s: a.state for s, a in self.agents.items()})

    def save_record(self, force: bool = False) -> None:
        """The agents' record on disk, at most every RECORD_EVERY_S; a full disk is
        reported once and tried again, the loop goes on."""
        if not self.record_dirty or not (
            force or time.monotonic() - self.recorded_at >= RECORD_EVERY_S
        ):
            return
        self.recorded_at = time.monotonic()
        try:
            agent_record.save(self.layout, agent_record.Record(dict(self.agents), self.ran))
        except OSError as e:
            if str(e) != self.record_failed:
                self.record_error(f"the agents' record not saved: {e}")
            self.record_failed = str(e)
            return
        self.record_dirty, self.record_failed = False, ""

    def install_signals(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self.inbox.put(Shutdown(signum))

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)

    def run(self) -> int:
        self.install_signals()
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        self.layout.data_dir.mkdir(parents=True, exist_ok=True)
        # a ready file left by an earlier run (a /run that is not a tmpfs) must not tell
        # claudy this one is ready
        self.layout.ready_file.unlink(missing_ok=True)
        self.publish()  # the dashboard says "starting" until the engine is up
        first = self.watcher.start()
        if isinstance(first, ConfigRejected):
            self.record_error(f"{first.error}; running on the defaults until a good save")
        self.reconcile()  # tmux and the dashboard first: they draw while dockerd starts
        self.tmux_watch.start()
        self.viewed = self.ui.viewed()
        self.draw(self.snapshot())
        self.services.start()
        self._start_engine()
        self.reconcile()
        self.control.start()  # before "ready": claudy's load-image asks the loop
        self.reports.start()
        self.publish(force=True)
        self.layout.ready_file.write_text("ready\n")
        log.info("parent ready")
        try:
            while True:
                try:
                    ev: Event = self.inbox.get(timeout=self.next_due())
                except queue.Empty:
                    ev = Tick()
                try:
                    if not self.handle(ev):
                        break
                except HalError as e:  # log, keep the last good state, go on
                    self.record_error(str(e))
                except Exception as e:  # one event's fault must not stop every worker
                    log.exception("unexpected error handling %s", type(ev).__name__)
                    self.record_error(
                        f"unexpected error handling {type(ev).__name__}: {e!r} (logged; "
                        "carrying on)"
                    )
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """In order: requests, the config watcher, the service runner, the sampler, workers,
        the egress proxy and firewall, then dockerd, then tmux."""
        self.layout.ready_file.unlink(missing_ok=True)
        self.control.stop()
        self.tmux_watch.stop()
        self.reports.stop()
        self.notifier.close()
        self.save_record(force=True)  # before the workers stop: which of them ran
        self.watcher.stop()
        self.services.stop()
        if self.sampler is not None:
            self.sampler.close()
        if self.engine is not None:
            try:
                workers.stop_all(self.engine)
            except HalError as e:
                log.error("stopping workers: %s", e)
        self.ports.stop()
        self.boundary.stop()  # the workers are gone: nothing left behind the firewall
        self.dockerd.stop()
        self.ui.kill_server()
        log.info("parent stopped")


def bring_back(
    engine: InnerEngine,
    cfg: Config,
    layout: ParentLayout,
    names: list[str],
    tell: Callable[[Event], None],
) -> None:
    """Spawn each of `names` that exists and does not run (a thread: it decides nothing,
    it does what `hal-agent spawn` would; what fails is told to the loop)."""
    for session in names:
        try:
            w = workers.find_by_session(engine, session)
            if w is None or w.state == "running":
                continue
            spawn(engine, None, cfg, w.project, layout, os.environ, name=session, image=w.image)
            log.info("brought back %s", session)
        except HalError as e:
            tell(LoopNote(f"{session} not brought back: {e}"))
        except Exception as e:
            log.exception("bringing back %s", session)
            tell(LoopNote(f"{session} not brought back: {e!r}"))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a snapshot's clock, left out of "did it change"


def _now() -> datetime:
    return datetime.now(UTC)


def moved(old: int, new: int) -> bool:
    """Whether the free disk moved enough to show: by a twentieth, or 256 MiB when little
    is left (the dashboard warns below 2 GiB)."""
    return abs(new - old) >= max(256 << 20, old // 20)


def disk_free(path: Path) -> int | None:
    """Bytes free for the inner engine's images and containers."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
