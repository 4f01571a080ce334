"""The snapshot's file: written atomically by the loop, read by the dashboard and `health`.

The file lives in the parent's run directory, which no worker mounts; it is still read with a
size bound and without following a link, as every file another process writes.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import datetime
from pathlib import Path

from parent_agent.core.snapshot import Snapshot

_HEAD = re.compile(r'\{"version": \d+, "now": "([^"]*)"')  # how Snapshot.to_json begins
MAX_BYTES = 4 << 20  # fifty workers take about 40 KiB


def publish(path: Path, snapshot: Snapshot) -> None:
    """Write `snapshot` whole: a temp file beside it, then a rename."""
    publish_text(path, snapshot.to_json())


def publish_text(path: Path, text: str) -> None:
    """Write a snapshot's JSON `text` whole: a temp file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def restamp(text: str, now: datetime) -> str:
    """The snapshot JSON `text` (as `Snapshot.to_json` wrote it) with its clock set to
    `now`: the loop's heartbeat, without serialising fifty workers again. `now` is the
    second key, before anything a worker could name; a text without it is a ValueError."""
    m = _HEAD.match(text)
    if m is None:
        raise ValueError("not a snapshot's JSON")
    return f"{text[: m.start(1)]}{now.isoformat()}{text[m.end(1) :]}"


def version(path: Path) -> tuple[int, int, int] | None:
    """What tells one write from the next (each is a new file): its inode, mtime and size;
    None when there is none. A stat, for readers that only want to know of a change."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def read(path: Path) -> Snapshot | None:
    """The last published snapshot, or None when there is none (yet) or it is unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with contextlib.closing(os.fdopen(fd, "rb")) as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return None
    try:
        return Snapshot.from_json(data)
    except ValueError:
        return None
