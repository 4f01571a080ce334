"""The dashboard's pane, written to by the loop: its terminal, found through tmux.

The pane runs no dashboard process of its own (one Python start-up and ~35 MB less): a
`cat` that swallows the keys typed into it holds its terminal, and the loop writes each frame
to that terminal. Before each write the terminal is checked to still be that pane's (the
pane's process has it as its stdin): a pty number freed by a closed pane may be reused by
another window, which must never receive a frame."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from hal_common.protocol import DASHBOARD_WINDOW, TMUX_SESSION

log = logging.getLogger(__name__)

TARGET = f"={TMUX_SESSION}:={DASHBOARD_WINDOW}.0"


class DashboardPane:
    """The top pane of the dashboard window, as a terminal to draw into."""

    def __init__(self, tmux_sock: Path) -> None:
        self.tmux_sock = tmux_sock
        self.tty = ""
        self.pid = 0
        self.fd: int | None = None

    def _find(self) -> bool:
        """Ask tmux for the pane's terminal and process; False when there is none (yet)."""
        try:
            res = subprocess.run(
                ["tmux", "-S", str(self.tmux_sock), "display-message", "-p", "-t", TARGET,
                 "#{pane_tty} #{pane_pid}"],
                capture_output=True, text=True, timeout=5, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return False
        tty, _, pid = res.stdout.strip().partition(" ")
        if res.returncode != 0 or not tty.startswith("/dev/") or not pid.isdigit():
            return False
        try:
            fd = os.open(tty, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            log.debug("cannot open the dashboard pane's terminal %s: %s", tty, e)
            return False
        self.close()
        self.tty, self.pid, self.fd = tty, int(pid), fd
        return self._same()

    def _same(self) -> bool:
        """The pane's process still has our terminal as its stdin."""
        try:
            return os.readlink(f"/proc/{self.pid}/fd/0") == self.tty
        except OSError:
            return False

    def size(self) -> tuple[int, int] | None:
        """(height, width) of the pane now, finding it again when it changed; None if gone."""
        if (self.fd is None or not self._same()) and not self._find():
            self.close()
            return None
        assert self.fd is not None  # noqa: S101 - found above
        try:
            columns, lines = os.get_terminal_size(self.fd)
        except OSError:
            self.close()
            return None
        return lines, columns

    def write(self, data: bytes) -> None:
        """Write a frame; a full terminal buffer drops the rest (the next frame is whole)."""
        if self.fd is None:
            return
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except BlockingIOError:
            pass
        except OSError as e:
            log.debug("dashboard pane write: %s", e)
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.tty, self.pid = None, "", 0
