"""The dashboard's adapter: gathers a Status from the engine and tmux, redraws with rich."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import docker
from rich.console import Console
from rich.live import Live

from hal_common.errors import HalError
from parent_agent.dashboard import Status, render
from parent_agent.tmux_ui import TmuxUI
from parent_agent.workers import list_workers

log = logging.getLogger(__name__)


class Gather:
    """Collects one Status; a dead engine gives `engine_ok=False`, not an exception."""

    def __init__(self, connect: Callable[[], docker.DockerClient], ui: TmuxUI) -> None:
        self.connect = connect
        self.ui = ui
        self.client: docker.DockerClient | None = None

    def __call__(self) -> Status:
        now = datetime.now(UTC)
        try:
            if self.client is None:
                self.client = self.connect()
            found, ok = tuple(list_workers(self.client)), True
        except HalError as e:
            log.debug("dashboard: engine unavailable: %s", e)
            self.client, found, ok = None, (), False
        return Status(
            now=now, engine_ok=ok, workers=found, windows=frozenset(self.ui.window_names())
        )


def run_live(gather: Callable[[], Status], refresh: float, stop: threading.Event) -> None:
    """Redraw every `refresh` seconds until `stop` is set."""
    console = Console()
    with Live(console=console, auto_refresh=False, screen=True) as live:
        while not stop.is_set():
            live.update(render(gather(), console.size.height), refresh=True)
            stop.wait(refresh)
