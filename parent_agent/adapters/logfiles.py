"""The parent's own logs: files in the data volume (`ParentLayout.log_dir`, /data/logs), so
that they outlive the container (`claudy down` removes it, not its volumes), each rotated by
size: past `MAX_BYTES` a file becomes `.1`, the older `.1` becomes `.2`, … up to `BACKUPS`.

- `agent.log`, `dashboard.log`: python logging's `RotatingFileHandler` (`file_handler`);
- `dockerd.log`: dockerd's output through a pipe, copied line by line by a thread (`pump`)
  into a `RotatingFile` (a child's file descriptor cannot rotate by itself);
- `hal-agent logs --agent|--dockerd|--dashboard`: `tail_lines` and `follow`.

(The egress log, `adapters/egress_log.py`, writes through a `RotatingFile` too.)
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

MAX_BYTES = 5 << 20  # per file: 5 MiB
BACKUPS = 3  # agent.log.1 … agent.log.3: at most 20 MiB a log
LINE_LIMIT = 64 << 10  # a longer "line" is written in pieces


def generations(path: Path, backups: int = BACKUPS) -> list[Path]:
    """`path` and its rotated files that exist, oldest first (`.3`, `.2`, `.1`, `path`)."""
    found = [path.with_name(f"{path.name}.{i}") for i in range(backups, 0, -1)]
    return [p for p in [*found, path] if p.exists()]


def rotate(path: Path, backups: int = BACKUPS) -> None:
    """`path` → `.1`, `.1` → `.2`, …; the oldest beyond `backups` is dropped."""
    for i in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    if backups > 0:
        os.replace(path, path.with_name(f"{path.name}.1"))
    else:
        path.unlink(missing_ok=True)


def file_handler(
    path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS
) -> logging.handlers.RotatingFileHandler:
    """A handler appending to `path`, rotated by size (one writing process per file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )


class RotatingFile:
    """Bytes appended to `path` (O_APPEND, one write a line); rotated before a write that
    would take it past `max_bytes`. A failing write is logged once and dropped: the writer
    (dockerd through the pump, the egress proxy) must never block on a full disk.

    Once a second at most, a write checks that `path` is still the file it holds open; one
    removed or replaced under it (by hand, by a reader's clean-up) is left for a new file
    where readers look. Not thread-safe: one writer, or the caller's lock."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._fd = -1
        self._size = 0
        self._failed = False
        self._checked = 0.0  # when `path` was last seen to be our file

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._checked = time.monotonic()

    def _moved(self) -> bool:
        try:
            return os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return True

    def write(self, data: bytes) -> None:
        try:
            if self._fd >= 0 and time.monotonic() - self._checked > 1.0:
                self._checked = time.monotonic()
                if self._moved():
                    self.close()
            if self._fd < 0:
                self._open()
            if self._size > 0 and self._size + len(data) > self.max_bytes:
                self.close()
                rotate(self.path, self.backups)
                self._open()
            os.write(self._fd, data)
            self._size += len(data)
            self._failed = False
        except OSError as e:
            if not self._failed:
                log.warning("cannot write %s: %s", self.path, e)
            self._failed = True
            self.close()  # opened afresh on the next write

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._fd >= 0:
                os.close(self._fd)
        self._fd = -1


def pump(stream: IO[bytes], out: RotatingFile, name: str = "log-pump") -> threading.Thread:
    """Copy `stream` (a child's stdout) into `out` line by line until its end, in a daemon
    thread; the thread ends, and `out` is closed, when the child has closed its output.
    It never stops reading before that: a child writing to a full pipe would hang."""

    def run() -> None:
        try:
            while chunk := stream.readline(LINE_LIMIT):
                out.write(chunk)
        finally:
            out.close()
            with contextlib.suppress(OSError):
                stream.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def tail_lines(path: Path, n: int | None, backups: int = BACKUPS) -> tuple[bytes, int]:
    """The last `n` lines (None: all) of `path` and its rotated files, oldest first; and how
    many bytes of `path` itself were read (where `follow` goes on)."""
    lines: list[bytes] = []
    read = 0
    for p in reversed(generations(path, backups)):  # newest first, until there are enough
        try:
            data = p.read_bytes()
        except FileNotFoundError:  # rotated away between the listing and the read
            continue
        if p == path:
            read = len(data)
        lines[:0] = data.splitlines(keepends=True)
        if n is not None and len(lines) >= n:
            break
    if n is not None:
        lines = lines[-n:] if n > 0 else []
    return b"".join(lines), read


def follow(
    path: Path, stop: threading.Event, offset: int | None = None, interval: float = 0.25
) -> Iterator[bytes]:
    """What is appended to `path` after `offset` (None: its end), until `stop` is set
    (`tail -F`: a rotation, or the file appearing later, moves on to the new file and reads
    it from its start)."""
    f: IO[bytes] | None = None
    try:
        with contextlib.suppress(FileNotFoundError):
            f = path.open("rb")
            end = f.seek(0, os.SEEK_END)
            f.seek(end if offset is None else min(offset, end))
        while not stop.is_set():
            data = f.read(1 << 16) if f is not None else b""
            if data:
                yield data
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                st = None
            if st is not None and (
                f is None or st.st_ino != os.fstat(f.fileno()).st_ino or st.st_size < f.tell()
            ):
                if f is not None:
                    rest = f.read()  # what was written before the rotation
                    if rest:
                        yield rest
                    f.close()
                f = path.open("rb")
                continue
            stop.wait(interval)
    finally:
        if f is not None:
            f.close()
