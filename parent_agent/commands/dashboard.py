"""The dashboard's adapter: gathers a Status from the engine and tmux, redraws with rich."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from hal_common import paths
from hal_common.config import Config, load_config
from hal_common.errors import ConfigError, EngineUnavailable, HalError
from parent_agent.adapters import services as svc
from parent_agent.adapters import status_file
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.tmux import TmuxUI
from parent_agent.adapters.usage import BackgroundSampler
from parent_agent.adapters.workers import WorkerLister
from parent_agent.core.model import ServiceState
from parent_agent.core.services import states
from parent_agent.core.spec import template_hash
from parent_agent.views.dashboard import Health, Status, render

log = logging.getLogger(__name__)
SERVICES_EVERY_S = 3.0
ERROR_WINDOW_S = 600  # errors older than this leave the dashboard


class ConfigFollower:
    """The config as saved now: re-read when the file changes; the last good one on errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, int] | None = None
        self.cfg = Config()

    def __call__(self) -> Config:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            return self.cfg
        if stamp != self.stamp:
            self.stamp = stamp
            try:
                self.cfg = load_config(self.path)
            except ConfigError as e:
                log.warning("dashboard keeps the last good config: %s", e)
        return self.cfg


def recent_errors(now: datetime, data: dict[str, Any]) -> tuple[str, ...]:
    """The agent loop's recent errors (from the status file), newest last."""
    out = []
    for e in data.get("errors", [])[-3:]:
        when = datetime.fromisoformat(e["time"])
        if (now - when).total_seconds() < ERROR_WINDOW_S:
            out.append(f"{when:%H:%M:%S} {e['text']}")
    return tuple(out)


def disk_free(path: str = str(paths.INNER_DATA_ROOT)) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class Gather:
    """Collects one Status; a dead engine gives `engine_ok=False`, not an exception."""

    def __init__(
        self, connect: Callable[[], InnerEngine], ui: TmuxUI, config: ConfigFollower
    ) -> None:
        self.connect = connect
        self.ui = ui
        self.config = config
        self.cfg = config()
        self.engine: InnerEngine | None = None
        self.sampler: BackgroundSampler | None = None
        self.list_workers = WorkerLister()
        self.services: tuple[ServiceState, ...] = ()
        self.services_at = 0.0

    def _services(self) -> tuple[ServiceState, ...]:
        """The shared services' health, every few seconds (an inspect and a connect each)."""
        assert self.engine is not None  # noqa: S101 - called after connecting
        if time.monotonic() - self.services_at >= SERVICES_EVERY_S:
            self.services_at = time.monotonic()
            try:
                found = svc.inspect_all(self.engine)
                self.services = tuple(states(self.cfg.services, found, svc.port_open))
            except HalError as e:
                log.debug("dashboard: services unknown: %s", e)
        return self.services

    def __call__(self) -> Status:
        now = datetime.now(UTC)
        self.cfg = self.config()
        try:
            if self.engine is None:
                self.engine = self.connect()
                if self.sampler is not None:
                    self.sampler.close()
                self.sampler = BackgroundSampler(self.engine, interval=1.0)
            found = tuple(self.list_workers(self.engine))
            images_ok = self._has_image()
            assert self.sampler is not None  # noqa: S101 - set together with the client
            use = self.sampler.want([w for w in found if w.state == "running"])
            health = Health(engine_ok=True, images_ok=images_ok, disk_free=disk_free())
            services = self._services()
        except HalError as e:
            log.debug("dashboard: engine unavailable: %s", e)
            self.engine, found, use, services = None, (), {}, ()
            starting = not paths.READY_FILE.exists()
            health = Health(engine_ok=False, starting=starting, disk_free=disk_free())
        windows = frozenset(self.ui.window_names())
        data = status_file.read()
        return Status(now=now, health=health, workers=found, usage=use, windows=windows,
                      errors=recent_errors(now, data), template=template_hash(self.cfg.worker),
                      restart_needed=tuple(data.get("restart_needed", [])),
                      max_rows=self.cfg.dashboard.max_rows, services=services)  # fmt: skip

    def _has_image(self) -> bool:
        assert self.engine is not None  # noqa: S101 - called after connecting
        try:
            return self.engine.has_image(self.cfg.worker.image)
        except EngineUnavailable:
            raise
        except HalError:
            return True  # unknown: don't cry wolf


@contextlib.contextmanager
def no_echo() -> Iterator[None]:
    """Keys typed into the dashboard's pane must not echo: a stray Enter would scroll the
    frame off the top of the screen."""
    if not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    quiet = termios.tcgetattr(fd)
    quiet[3] &= ~(termios.ECHO | termios.ICANON)
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def run_live(gather: Gather, stop: threading.Event) -> None:
    """Redraw every `[dashboard].refresh` seconds (as saved now) until `stop` is set."""
    console = Console()
    with no_echo(), Live(console=console, auto_refresh=False, screen=True) as live:
        while not stop.is_set():
            status = gather()
            # the pane's size now (it may have been resized while gathering); never LINES or
            # COLUMNS from the environment, which go stale when tmux resizes the pane
            try:
                width, height = os.get_terminal_size(sys.stdout.fileno())
                console.size = (width, height)
            except OSError:  # not a terminal (a test, a pipe): whatever rich thinks
                width, height = console.size
            live.update(render(status, height, width), refresh=True)
            stop.wait(gather.cfg.dashboard.refresh)
