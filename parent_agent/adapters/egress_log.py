"""The egress log: one JSON line per request (`EgressRow`), rotated to `.1` past 1 MB.

The proxy appends (`EgressLog.append`, from its own thread); `hal-agent egress` reads
(`tail`). The file lives in the parent's log directory, which no worker can write; a line
that does not parse (a write cut short by a crash) is skipped, never fatal.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from hal_common.egress import LOG_MAX_BYTES
from hal_common.errors import HalError
from hal_common.protocol import EgressRow
from parent_agent.adapters.logfiles import RotatingFile


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


class EgressLog:
    """Appends rows as lines to a `RotatingFile` that keeps one old generation (`.1`).

    Thread-safe. A failing write is logged once and otherwise ignored: the proxy keeps
    deciding and serving when the disk is full."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES) -> None:
        self.path, self.max_bytes = path, max_bytes
        self._lock = threading.Lock()
        self._file = RotatingFile(path, max_bytes, backups=1)  # open between appends

    def append(self, row: EgressRow) -> None:
        line = (json.dumps(row.to_json(), separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        with self._lock:
            self._file.close()


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
