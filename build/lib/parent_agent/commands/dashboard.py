"""`hal-agent dashboard`: redraws the loop's snapshot (it lists, samples and polls nothing).

The agent loop publishes a snapshot after every event and tick (`parent_agent/app/agent.py`);
this only reads that file and renders it with rich, so one picture of the world is drawn
wherever it is shown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import termios
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live

from parent_agent.adapters import snapshot_file
from parent_agent.core.snapshot import Health, Snapshot
from parent_agent.views.dashboard import render

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STALE_AFTER_S = 10.0  # a loop that published nothing for this long is stuck or gone


def current(path: Path, now: datetime) -> Snapshot:
    """What to draw now: the published snapshot at today's clock, or why there is none."""
    return at(snapshot_file.read(path), now)


def at(snap: Snapshot | None, now: datetime) -> Snapshot:
    """`snap` (as read) to draw at `now`: starting when there is none, silent when old."""
    if snap is None:  # the loop has not published yet: the parent is starting
        return Snapshot(now=now, health=Health(engine_ok=False, starting=True))
    age = (now - snap.now).total_seconds()
    if age > max(STALE_AFTER_S, 3 * snap.refresh):
        return dataclasses.replace(snap, now=now, health=Health(False, stale_s=int(age)))
    return dataclasses.replace(snap, now=now)


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


UNSEEN_POLL_S = 0.5  # while nobody looks: how soon a look (a new snapshot) is noticed


def run_live(path: Path, stop: threading.Event) -> None:
    """Redraw every `[dashboard].refresh` seconds (as the loop last read it) until `stop`.

    While no tmux client shows the dashboard (the loop's snapshot says `viewed`) and the loop
    is alive, a frame is drawn only when what the loop knows changed, not for the clock: the
    file is stat'ed, and read when the loop wrote it again."""
    console = Console()
    seen: tuple[int, int, int] | None = None
    read: Snapshot | None = None
    drawn: Snapshot | None = None  # what the last frame showed, its clock aside
    with no_echo(), Live(console=console, auto_refresh=False, screen=True) as live:
        while not stop.is_set():
            key = snapshot_file.version(path)
            fresh = key is None or key != seen
            if fresh:
                seen, read = key, snapshot_file.read(path)
            snap = at(read, datetime.now(UTC))
            if not snap.viewed and not snap.health.stale_s and drawn is not None:
                # unseen: the same file shows the same; a new one (the loop's heartbeat)
                # is compared once, its clock aside
                body = dataclasses.replace(snap, now=EPOCH)
                if not fresh or body == drawn:
                    drawn = body
                    stop.wait(UNSEEN_POLL_S)
                    continue
            drawn = dataclasses.replace(snap, now=EPOCH)
            # the pane's size now (it may have been resized meanwhile); never LINES or
            # COLUMNS from the environment, which go stale when tmux resizes the pane
            try:
                width, height = os.get_terminal_size(sys.stdout.fileno())
                console.size = (width, height)
            except OSError:  # not a terminal (a test, a pipe): whatever rich thinks
                width, height = console.size
            live.update(render(snap, height, width), refresh=True)
            stop.wait(min(snap.refresh, 1.0) if snap.health.starting else snap.refresh)
