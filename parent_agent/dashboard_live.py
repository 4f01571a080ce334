"""The dashboard's adapter: gathers a Status from the engine and tmux, redraws with rich."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import docker
import docker.errors
from rich.console import Console
from rich.live import Live

from hal_common import paths
from hal_common.errors import HalError
from parent_agent.dashboard import Health, Status, render
from parent_agent.tmux_ui import TmuxUI
from parent_agent.usage_live import BackgroundSampler
from parent_agent.workers import list_workers

log = logging.getLogger(__name__)
ERROR_WINDOW_S = 600  # errors older than this leave the dashboard


def recent_errors(now: datetime) -> tuple[str, ...]:
    """The agent loop's recent errors (it writes them to STATUS_FILE), newest last."""
    try:
        data = json.loads(paths.STATUS_FILE.read_text())
    except (OSError, ValueError):
        return ()
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

    def __init__(self, connect: Callable[[], docker.DockerClient], ui: TmuxUI, image: str):
        self.connect = connect
        self.ui = ui
        self.image = image
        self.client: docker.DockerClient | None = None
        self.sampler: BackgroundSampler | None = None

    def __call__(self) -> Status:
        now = datetime.now(UTC)
        try:
            if self.client is None:
                self.client = self.connect()
                if self.sampler is not None:
                    self.sampler.close()
                self.sampler = BackgroundSampler(self.client, interval=1.0)
            found = tuple(list_workers(self.client))
            images_ok = self._has_image()
            assert self.sampler is not None  # noqa: S101 - set together with the client
            use = self.sampler.want([w for w in found if w.state == "running"])
            health = Health(engine_ok=True, images_ok=images_ok, disk_free=disk_free())
        except HalError as e:
            log.debug("dashboard: engine unavailable: %s", e)
            self.client, found, use = None, (), {}
            health = Health(engine_ok=False, disk_free=disk_free())
        windows = frozenset(self.ui.window_names())
        return Status(now=now, health=health, workers=found, usage=use, windows=windows,
                      errors=recent_errors(now))  # fmt: skip

    def _has_image(self) -> bool:
        assert self.client is not None  # noqa: S101 - called after connecting
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError:
            return True  # unknown: don't cry wolf
        return True


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


def run_live(gather: Callable[[], Status], refresh: float, stop: threading.Event) -> None:
    """Redraw every `refresh` seconds until `stop` is set."""
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
            stop.wait(refresh)
