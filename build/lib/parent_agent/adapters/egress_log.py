"""The egress log: one JSON line per request (`EgressRow`), rotated to `.1` past 1 MB.

The proxy appends (`EgressLog.append`, from its own thread); `hal-agent egress` reads
(`tail`). The file lives in the parent's log directory, which no worker can write; a line
that does not parse (a write cut short by a crash) is skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from hal_common.egress import LOG_MAX_BYTES
from hal_common.errors import HalError
from hal_common.protocol import EgressRow

log = logging.getLogger(__name__)


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


class EgressLog:
    """Appends rows as lines; past `max_bytes` the file becomes `.1` (one generation kept).

    Thread-safe. A failing write is logged once and otherwise ignored: the proxy keeps
    deciding and serving when the disk is full."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES) -> None:
        self.path, self.max_bytes = path, max_bytes
        self._lock = threading.Lock()
        self._failed = False
        self._fd = -1  # kept open between appends: one write(2) a request
        self._size = 0
        self._checked = 0.0  # when the path was last seen to be our file

    def append(self, row: EgressRow) -> None:
        line = (json.dumps(row.to_json(), separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                self._write(line)
                self._failed = False
            except OSError as e:
                if not self._failed:
                    log.warning("egress log %s: %s", self.path, e)
                self._failed = True

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o640)
        self._size = os.fstat(self._fd).st_size

    def _write(self, line: bytes) -> None:
        if self._fd >= 0 and time.monotonic() - self._checked > 1.0:
            self._checked = time.monotonic()
            try:
                moved = os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
            except FileNotFoundError:
                moved = True
            if moved:  # removed or replaced under us: write where a reader looks
                self.close()
        if self._fd < 0:
            self._open()
        if self._size + len(line) > self.max_bytes and self._size > 0:
            self.close()
            os.replace(self.path, rotated(self.path))
            self._open()
        try:
            os.write(self._fd, line)
        except OSError:
            self.close()  # opened afresh on the next line (the file may have been removed)
            raise
        self._size += len(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._fd >= 0:
                os.close(self._fd)
        self._fd = -1


def _rows(path: Path, into: list[EgressRow], limit: int) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit)
    for raw in data.splitlines():
        try:
            into.append(EgressRow.from_json(json.loads(raw)))
        except (ValueError, HalError):
            continue  # a torn line


def tail(path: Path, n: int, worker: str | None = None) -> list[EgressRow]:
    """The last `n` rows (of `worker`, when given), oldest first, from `path` and its `.1`.

    A missing log is no rows; one that cannot be read raises HalError saying which."""
    rows: list[EgressRow] = []
    limit = 4 * LOG_MAX_BYTES  # bounded even if the file grew past its rotation
    try:
        _rows(rotated(path), rows, limit)
        _rows(path, rows, limit)
    except OSError as e:
        raise HalError(
            f"cannot read the egress log {path}: {e.strerror or e}",
            hint="the proxy writes it once a worker makes a request; is this the parent?",
        ) from None
    if worker is not None:
        rows = [r for r in rows if r.worker == worker]
    return rows[-n:] if n > 0 else rows
