"""Each worker's hook reports, read from its own report directory into `AgentReport`s.

A worker's Claude Code runs `hal-worker hook` on each hook event (managed settings); it
writes the event's JSON as one file `NS-PID.json` (nanoseconds, pid) into `/run/hal-report`,
which is `ParentLayout.worker_reports(session)`: that worker's directory and no other's, so
a worker can report only for itself. The directory is the worker's to write: whatever is
in it is untrusted input. `ReportWatcher` reads a directory when inotify says it changed
(polling one the kernel will not watch: an lstat each 0.2 s), and every one each SWEEP_S, and:

- opens it without following links (`untrusted.directory`: a link in its place is refused);
- looks at no more than `MAX_NAMES` entries of each directory per scan, reads no more than
  `MAX_SCAN_BYTES` of reports, each through `untrusted.read` (no link followed, never blocking on a
  FIFO, a regular file of one link, at most `MAX_REPORT` bytes), and parses it only then
  (`json.loads` on at most 64 KiB; a too deep nesting is an error like any other);
- deletes what it read and what does not belong (links, FIFOs, other names, empty
  directories; a file being written, `.NS-PID.tmp`, once it is older than `STALE_TMP_S`);
- passes the events of each directory in the order of their file names (the time they
  were written), as one `AgentReport` per worker with news.

A flood (thousands of files, links, FIFOs, huge or malformed files) costs bounded work per
scan and delays only the flooding worker's own reports; nothing a worker writes stops the
watcher (an error in one scan is logged, and the next scan goes on).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Collection
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hal_common.layout import ParentLayout
from parent_agent.adapters import untrusted
from parent_agent.adapters.inotify import Inotify, News
from parent_agent.core.agent_state import HookEvent

log = logging.getLogger(__name__)

MAX_REPORT = 64 * 1024  # bytes of one report (hal-worker hook writes at most this)
MAX_NAMES = 512  # entries of one directory looked at per scan
MAX_READS = MAX_NAMES  # reports of one directory opened per scan
MAX_SCAN_BYTES = 1 << 20  # bytes of one directory read per scan (the rest: next scan)
STALE_TMP_S = 60.0  # a report still being written after this was abandoned
REPORT_NAME = re.compile(r"^[0-9]{1,20}-[0-9]{1,10}\.json$")
TMP_NAME = re.compile(r"^\.[0-9]{1,20}-[0-9]{1,10}\.tmp$")
REPORT_DIR = "report"  # in each `workers/SESSION`
RECENT_NS = 1_000_000_000  # a directory changed within this is read on each pass
SWEEP_S = 10.0  # every directory read whatever its times say (abandoned temp files age)
ROOT_CHECK_S = 0.5  # how often an idle watcher looks for new workers' directories


@dataclass(frozen=True)
class AgentReport:
    """What one worker reported since the last scan, oldest first."""

    session: str
    events: tuple[HookEvent, ...]


def parse(data: bytes) -> HookEvent | None:
    """The hook event in one report's bytes; None for anything else (too big, not JSON,
    nested too deep, not an event we know)."""
    if len(data) > MAX_REPORT:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return HookEvent.from_payload(doc)


def _remove(fd: int, name: str) -> None:
    """Remove the entry `name` (never following it); an empty directory too. A directory
    with something in it stays (the worker's own clutter, looked at again each scan)."""
    try:
        os.unlink(name, dir_fd=fd)
    except OSError as e:
        if e.errno in (errno.EISDIR, errno.EPERM):
            with suppress(OSError):
                os.rmdir(name, dir_fd=fd)


def _names(fd: int, limit: int) -> list[str]:
    out: list[str] = []
    with os.scandir(fd) as entries:
        for entry in entries:
            out.append(entry.name)
            if len(out) >= limit:
                break
    return out


def read_reports(fd: int, now: float | None = None) -> list[HookEvent]:
    """The events in the report directory `fd`, oldest first, each report deleted once
    read; junk deleted. Bounded work (`MAX_NAMES`, `MAX_READS`, `MAX_SCAN_BYTES`)."""
    now = time.time() if now is None else now
    names = _names(fd, MAX_NAMES)
    reports = sorted(n for n in names if REPORT_NAME.match(n))
    events: list[HookEvent] = []
    budget = MAX_SCAN_BYTES
    for name in reports[:MAX_READS]:
        if budget <= 0:
            break  # the rest on the next scan, still in order
        try:
            data = untrusted.read(fd, name, MAX_REPORT)
        except OSError as e:  # refused (a link, a FIFO, too big...) or vanished
            log.debug("report %s refused: %s", name, e)
            data = None
        _remove(fd, name)
        budget -= len(data) if data is not None else 0
        ev = parse(data) if data is not None else None
        if ev is not None:
            events.append(ev)
    for name in names:
        if REPORT_NAME.match(name):
            continue
        if TMP_NAME.match(name):
            st = untrusted.lstat(fd, name)
            if st is not None and stat.S_ISREG(st.st_mode) and now - st.st_mtime < STALE_TMP_S:
                continue  # being written
        _remove(fd, name)
    return events


class ReportWatcher:
    """Watches `data_dir/workers/*/report` in a thread of its own and calls
    `put(AgentReport)` for each worker with news. `scan()` is one pass.

    The thread waits on one inotify descriptor with a watch on every worker's directory
    (adapters/inotify.py): an idle parent reads nothing and wakes only to look for new
    workers every `ROOT_CHECK_S` (issue 13, row 11: the polling this replaces cost most of
    the loop's idle CPU). A round follows the last by at least `interval` seconds, so a
    worker that floods its directory gets no more reads than polling gave it. A directory the
    kernel will not watch (no inotify, its limit of watches reached) is polled every
    `interval` (an lstat, `_changed`), and every directory is read each SWEEP_S whatever was
    said about it (abandoned temp files age; a missed event costs at most that)."""

    def __init__(
        self,
        layout: ParentLayout,
        put: Callable[[AgentReport], None],
        interval: float = 0.2,
    ) -> None:
        self.layout = layout
        self.put = put
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused: set[str] = set()  # sessions whose directory was refused (logged once)
        self._seen: dict[str, tuple[int, int, int]] = {}  # session → its directory as last read
        self._swept = 0.0
        self._notify: Inotify | None = None  # set while the thread runs with inotify
        self._watch: dict[str, int] = {}  # session → its directory's watch
        self._unwatched: set[str] = set()  # sessions the kernel would not watch: polled

    def scan(self, full: bool = True, changed: Collection[str] = ()) -> list[AgentReport]:
        """One pass over every worker's report directory: the news, one report per worker.
        Not `full`: only the directories said to have `changed` (by inotify), those watched
        just now, and those not watched whose times changed since they were last read (an
        lstat each, no open: idle workers cost next to nothing)."""
        root = self.layout.workers_dir
        try:
            with os.scandir(root) as entries:
                sessions = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
        fresh = self._watch_new(root, sessions)
        out: list[AgentReport] = []
        now = time.time()
        for session in sessions:
            if session in self._watch:
                wanted = full or session in changed or session in fresh
            else:  # its times noted on every pass, full or not
                wanted = self._changed(root, session) or full
            if not wanted:
                continue
            try:
                with untrusted.directory(root, PurePosixPath(session, REPORT_DIR)) as fd:
                    events = read_reports(fd, now)
            except FileNotFoundError:
                continue
            except OSError as e:
                if session not in self._refused:
                    self._refused.add(session)
                    log.warning("worker %s: its report directory is left alone: %s", session, e)
                continue
            self._refused.discard(session)
            if events:
                out.append(AgentReport(session, tuple(events)))
        return out

    def _watch_new(self, root: Path, sessions: list[str]) -> set[str]:
        """Watches for the directories of workers new since the last pass (read in this
        pass too: a report may have come before its watch); those gone are forgotten."""
        notify = self._notify
        if notify is None:
            return set()
        present = set(sessions)
        for gone in [s for s in self._watch if s not in present]:
            notify.remove(self._watch.pop(gone))
        self._unwatched &= present
        fresh: set[str] = set()
        for session in sessions:
            if session in self._watch or session in self._unwatched:
                continue
            try:
                self._watch[session] = notify.add(f"{root}/{session}/{REPORT_DIR}")
                fresh.add(session)
            except OSError as e:
                if e.errno != errno.ENOENT:  # not made yet: tried again next pass
                    log.warning("worker %s: its reports polled (no watch: %s)", session, e)
                    self._unwatched.add(session)
        return fresh

    def _changed(self, root: Path, session: str) -> bool:
        """Whether `session`'s report directory changed since it was last looked at: its
        inode, mtime or ctime (the parent owns `workers/SESSION`, so the path is no link; a
        worker can set its directory's mtime, never its ctime). Noted before the read: the
        read's own deletions make one more (empty) pass, so nothing left over waits."""
        try:
            st = os.lstat(f"{root}/{session}/{REPORT_DIR}")  # str: this runs 5 times a second
        except OSError:
            self._seen.pop(session, None)
            return False
        key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        # the kernel's file times are coarse (a tick, ~4 ms): a report written in the tick
        # of the last read leaves them as they were; a directory changed lately is read again
        recent = time.time_ns() - st.st_ctime_ns < RECENT_NS
        if self._seen.get(session) == key and not recent:
            return False
        self._seen[session] = key
        return True

    def _round(self, news: News) -> None:
        """One pass: every directory when a sweep is due or the kernel's queue overflowed,
        else those with news."""
        if news.gone:
            gone = {s for s, wd in self._watch.items() if wd in news.gone}
            for session in gone:  # its directory went (or was remade): watched again if there
                del self._watch[session]
        full = news.overflow or time.monotonic() - self._swept >= SWEEP_S
        if full:
            self._swept = time.monotonic()
        changed = {s for s, wd in self._watch.items() if wd in news.changed}
        for report in self.scan(full=full, changed=changed):
            self.put(report)

    def _run(self) -> None:
        notify = self._notify
        news = News()
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    self._round(news)
                except Exception:  # the watcher outlives any one bad scan
                    log.exception("scanning the workers' reports failed; going on")
                # the next round no sooner than `interval` after this one began; at once
                # then while some directory is polled, else when inotify has news
                self._stop.wait(max(0.0, began + self.interval - time.monotonic()))
                if notify is not None:
                    news = notify.wait(0.0 if self._unwatched else ROOT_CHECK_S)
        finally:
            if notify is not None:
                notify.close()
            self._notify = None
            self._watch.clear()
            self._unwatched.clear()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._notify = Inotify.open()
        if self._notify is None:
            log.warning("no inotify: the workers' reports are polled every %.1fs", self.interval)
        self._thread = threading.Thread(target=self._run, name="agent-reports", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._notify is not None:
            self._notify.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
