"""inotify(7) through ctypes: one descriptor for any number of directories, news by watch.

The report watcher (adapters/agent_reports.py) needs to know which of many workers' report
directories changed, and nothing else. watchdog, which watches the config, runs a thread per
watched directory (and before its 5.0 an inotify instance each): fifty workers would be fifty
threads. So this asks the kernel directly: one descriptor, one watch per directory, read in
the watcher's own thread. Linux only; `Inotify.open()` gives None where the kernel refuses
(or has no inotify), and the caller polls as before.

What the kernel reports is bounded here too: at most `READ_MAX` bytes of events per `wait`
(the rest stays queued for the next one), and a queue that overflowed is said as such (the
caller then reads every directory once).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import struct
from dataclasses import dataclass

IN_CLOSE_WRITE = 0x0000_0008
IN_MOVED_TO = 0x0000_0080
IN_CREATE = 0x0000_0100
IN_DELETE_SELF = 0x0000_0400
IN_MOVE_SELF = 0x0000_0800
IN_Q_OVERFLOW = 0x0000_4000
IN_IGNORED = 0x0000_8000  # the watch is gone (its directory removed, or removed by us)
IN_ONLYDIR = 0x0100_0000
IN_DONT_FOLLOW = 0x0200_0000
IN_EXCL_UNLINK = 0x0400_0000
# a file written in place, or renamed into the directory (the hook's temp file, when done);
# not creations nor deletions (the watcher's own reads make those; junk waits for a sweep)
MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
FLAGS = IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
READ_MAX = 64 * 1024


@dataclass(frozen=True)
class News:
    """What one `wait` read: the watches with news, those gone, whether the queue overflowed."""

    changed: frozenset[int] = frozenset()
    gone: frozenset[int] = frozenset()
    overflow: bool = False


def parse(buf: bytes) -> News:
    """The events in `buf`, as the kernel lays them out (a truncated tail is ignored). A
    hidden name is no news: a file being written there is renamed into place when done."""
    changed: set[int] = set()
    gone: set[int] = set()
    overflow = False
    at = 0
    while at + HEADER.size <= len(buf):
        wd, mask, _cookie, length = HEADER.unpack_from(buf, at)
        hidden = buf[at + HEADER.size : at + HEADER.size + 1] == b"."
        at += HEADER.size + length
        if at > len(buf):
            break
        if mask & IN_Q_OVERFLOW:
            overflow = True
        elif mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
            gone.add(wd)
        elif not hidden:
            changed.add(wd)
    return News(frozenset(changed - gone), frozenset(gone), overflow)


class Inotify:
    """One inotify descriptor and a pipe to wake its `wait` from another thread."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self._fd = fd
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    @classmethod
    def open(cls) -> Inotify | None:
        """A new descriptor; None where there is no inotify or the kernel refuses one (the
        per-user limit of instances reached, say)."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init = libc.inotify_init1
        except (OSError, AttributeError):
            return None
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        return cls(libc, fd) if fd >= 0 else None

    def add(self, path: str) -> int:
        """Watch the directory `path` (never through a link); its watch descriptor. OSError
        when it is not there, not a directory, or the kernel's limit of watches is reached."""
        wd = int(
            self._libc.inotify_add_watch(self._fd, os.fsencode(path), ctypes.c_uint32(MASK | FLAGS))
        )
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"{os.strerror(code)}: {path}")
        return wd

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self._fd, wd)  # gone already: EINVAL, nothing to do

    def wait(self, timeout: float) -> News:
        """What happened, once something did, `wake()` was called, or `timeout` passed."""
        ready, _, _ = select.select([self._fd, self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 64):
                    pass
        if self._fd not in ready:
            return News()
        try:
            return parse(os.read(self._fd, READ_MAX))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return News()
            raise

    def wake(self) -> None:
        """Make a `wait` in another thread return now."""
        with contextlib.suppress(BlockingIOError):  # already woken
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        for fd in (self._fd, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
