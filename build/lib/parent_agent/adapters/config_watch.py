"""Watch the config file and hand each settled save to the agent loop as one typed event.

Adapter over watchdog. It watches the file's *directory* (editors save by rename; the parent
sees a bind-mounted directory, never a single-file mount) and matches both `src_path` and
`dest_path` against the file name. Events only poke the `config-settle` thread, which stats
the file and reads it once the save has settled (`Settle`):

- no event for `debounce` seconds after the last one, and
- the file held still: the same (inode, mtime, size) on two stats at least `debounce` apart
  (a stat that shows a change counts as an event), and
- the read agrees: the open file's fstat before and after reading equals that stat.

Otherwise it waits again. So a save whose writes all fall within `debounce` (an in-place write,
a rename over the file, a slow writer in chunks) is read once, in its final state, however late
its events arrive; a writer that stops for longer than `debounce` mid-save has made two saves.
`deliver` gets one of

- `ConfigChanged(config)` for a valid save (every one; the consumer diffs), or
- `ConfigRejected(error)` for an empty, unreadable, invalid or deleted file; the same error
  twice in a row is delivered once, and the consumer keeps its last good config.

A save is recognised by the file's (inode, mtime, size, content hash): events that change none
of them (our own reads, a late duplicate, a chmod) deliver nothing. Each settled state is
delivered at most once, whichever of events and stats noticed it, and however many times.

Observers, by `mode`:
- `inotify`: the platform's native events only (inotify on Linux).
- `poll`: watchdog's PollingObserver, every `poll_interval` seconds.
- `auto`: native events when the observer starts (else, e.g. inotify limits reached, polling),
  plus a stat of the one file every `poll_interval` seconds as a safety net for mounts where
  events never arrive (Docker Desktop bind mounts from macOS or Windows hosts). The stat costs
  one syscall; a change it sees is an event like any other, so a save that both paths notice
  still gives one delivery.

Threads never decide anything: the observer's threads and the `config-settle` thread only call
`deliver` (the agent passes `inbox.put`). `stop()` joins every thread `start()` started.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from hal_common.config import Config, WatchConfig, resolve, resolve_saved
from hal_common.errors import ConfigError

log = logging.getLogger(__name__)

DEBOUNCE = 0.3  # seconds of quiet before a save counts as settled
# Our own reads open and close the file: opened/closed-no-write events must not count.
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
]


@dataclass(frozen=True)
class ConfigChanged:
    """A valid save: the new effective config (file and environment)."""

    config: Config


@dataclass(frozen=True)
class ConfigRejected:
    """A save that is not applied; `error` has the file, line, column and message."""

    error: ConfigError


ConfigEvent = ConfigChanged | ConfigRejected
Deliver = Callable[[ConfigEvent], object]

# (inode, mtime_ns, size) and, once read, the content's hash; None: no file
Stat = tuple[int, int, int]
Seen = tuple[Stat, str] | None


def _stat(path: Path) -> Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _fstat(fd: int) -> Stat:
    st = os.fstat(fd)
    return st.st_ino, st.st_mtime_ns, st.st_size


@dataclass(frozen=True)
class _Snapshot:
    """One read of the file through one open fd: its stat before and after reading (equal
    when nothing wrote during the read), its bytes, or why it could not be read."""

    before: Stat | None  # None: no file
    after: Stat | None
    data: bytes | None
    error: OSError | None


def _read(path: Path) -> _Snapshot:
    try:
        with open(path, "rb") as f:
            before = _fstat(f.fileno())
            data = f.read()
            after = _fstat(f.fileno())
    except FileNotFoundError:
        return _Snapshot(None, None, None, None)
    except OSError as e:
        st = _stat(path)
        return _Snapshot(st, st, None, e)
    return _Snapshot(before, after, data, None)


@dataclass
class Settle:
    """When a save has settled: the watcher's timing rule, as plain data (no clock, no I/O).

    `event(now)` records an event; `saw(stat, now)` a stat of the file, which counts as an
    event when it differs from the last one. The save is `due` once `debounce` has passed
    since the last event of either kind; a stat taken then that still equals the last one
    (`saw` returns False) shows the file held still across at least `debounce`.
    """

    debounce: float
    stat: Stat | None  # the last stat seen; None: no file
    pending: bool = False  # an event since the last read
    deadline: float = 0.0  # last event + debounce

    def event(self, now: float) -> None:
        self.pending = True
        self.deadline = now + self.debounce

    def saw(self, stat: Stat | None, now: float) -> bool:
        """Record a stat; True when it shows a change (and so restarts the debounce)."""
        if stat == self.stat:
            return False
        self.stat = stat
        self.event(now)
        return True

    def due(self, now: float) -> bool:
        return self.pending and now >= self.deadline

    def take(self, now: float) -> bool:
        """Due, and so no longer pending: the file is read now; an event from here on makes
        it pending again."""
        due = self.due(now)
        self.pending = self.pending and not due
        return due


class _Poke(FileSystemEventHandler):
    def __init__(self, name: str, poke: Callable[[], None]) -> None:
        self.name = name
        self.poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or not isinstance(event, tuple(_EVENTS)):
            return
        names = {os.path.basename(os.fsdecode(p)) for p in (event.src_path, event.dest_path) if p}
        if self.name in names:
            self.poke()


class ConfigWatcher:
    """Watches `path`; see the module docstring. `native` builds the event observer (a seam
    for tests: e.g. one that hears nothing, to show the safety net)."""

    def __init__(
        self,
        path: Path,
        deliver: Deliver,
        *,
        watch: WatchConfig | None = None,
        debounce: float = DEBOUNCE,
        env: Mapping[str, str] | None = None,
        native: Callable[[], BaseObserver] = Observer,
    ) -> None:
        self.path = path
        self.deliver = deliver
        self.watch = watch or WatchConfig()
        self.debounce = debounce
        self.env = dict(os.environ if env is None else env)
        self.native = native
        self.kind = ""  # "inotify" or "poll" once started
        self._cond = threading.Condition()
        self._clock = Settle(debounce, None)
        self._fresh = False  # an event the settle thread has not yet stat'ed the file for
        self._stopping = False
        self._seen: Seen = None
        self._last_error = ""
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._net_warned = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ConfigEvent:
        """Start watching; returns the config as it is now (not delivered): ConfigChanged
        (the embedded defaults when there is no file) or ConfigRejected."""
        if self._thread is not None:
            raise RuntimeError("the config watcher is already running")
        self.path.parent.mkdir(parents=True, exist_ok=True)  # a directory to watch
        self._stopping, self._fresh, self._seen, self._last_error = False, False, None, ""
        self._observer, self.kind = self._start_observer()
        snap = _read(self.path)  # after the observer starts, so no save falls in between
        with self._cond:  # keeping any event the observer has had already
            self._clock.stat = snap.after
            if snap.before != snap.after:  # written while we read: settle it as any save
                self._clock.event(time.monotonic())
        initial = self._event_for(snap)
        if isinstance(initial, ConfigRejected):
            self._last_error = str(initial.error)
        self._start_thread()
        return initial or ConfigChanged(resolve(None, str(self.path), self.env).config)

    def stop(self) -> None:
        """Stop and join every thread `start()` started (idempotent). Not from `deliver`."""
        if self._thread is threading.current_thread():
            raise RuntimeError("stop() from deliver() would wait for itself; stop from the loop")
        observer, thread = self._observer, self._thread
        self._observer = self._thread = None
        if observer is not None:
            observer.stop()
            with contextlib.suppress(RuntimeError):  # never started
                observer.join()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join()

    def reconfigure(self, watch: WatchConfig) -> None:
        """Apply a new `[watch]` section (from the agent loop, never from `deliver`). What
        was settled and reported so far carries over."""
        if watch == self.watch or self._thread is None:
            self.watch = watch
            return
        self.stop()
        self.watch = watch
        self._stopping = False
        self._observer, self.kind = self._start_observer()
        self._start_thread()
        self._poke()  # a save in the gap between the two observers is not lost

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="config-settle", daemon=True)
        self._thread.start()

    def _start_observer(self) -> tuple[BaseObserver, str]:
        handler = _Poke(self.path.name, self._poke)
        directory = str(self.path.parent)
        if self.watch.mode != "poll":
            observer = self.native()
            try:
                observer.schedule(handler, directory, recursive=False, event_filter=_EVENTS)
                observer.start()
                return observer, "inotify"
            except OSError as e:
                observer.stop()
                if self.watch.mode == "inotify":
                    raise ConfigError(
                        f"cannot watch {directory} for changes: {e}",
                        hint='set [watch] mode = "poll" (or "auto")',
                    ) from None
                log.warning("file events unavailable (%s); polling the config instead", e)
        observer = PollingObserver(timeout=self.watch.poll_interval)
        observer.schedule(handler, directory, recursive=False, event_filter=_EVENTS)
        observer.start()
        return observer, "poll"

    # -- the settle thread -------------------------------------------------------------------

    def _poke(self) -> None:
        with self._cond:
            self._clock.event(time.monotonic())
            self._fresh = True
            self._cond.notify_all()

    def _run(self) -> None:
        """Stat the file after each event, every `poll_interval` as the safety net, and when
        the debounce is up; read it once it has settled (see `Settle`)."""
        safety_net = self.watch.mode == "auto" and self.kind == "inotify"
        interval = self.watch.poll_interval
        next_look = time.monotonic() + interval
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                by_net = safety_net and now >= next_look
                if not (self._fresh or by_net or self._clock.due(now)):
                    waits = [self._clock.deadline - now] if self._clock.pending else []
                    waits += [next_look - now] if safety_net else []
                    self._cond.wait(min(waits) if waits else None)
                    continue
                self._fresh = False
                quiet = not self._clock.pending
            if by_net:
                next_look = now + interval
            stat = _stat(self.path)
            with self._cond:
                now = time.monotonic()
                changed = self._clock.saw(stat, now)
                due = self._clock.take(now)
            if changed and by_net and quiet and not self._net_warned:
                self._net_warned = True
                log.info(
                    "config change seen by stat, not by file events; is the directory a mount?"
                )
            if due:
                self._read_settled()

    def _read_settled(self) -> None:
        """Read the file that held still; deliver, unless it changed since the last stat."""
        snap = _read(self.path)
        with self._cond:
            if not snap.before == snap.after == self._clock.stat:  # not settled: wait again
                now = time.monotonic()
                if not self._clock.saw(snap.after, now):
                    self._clock.event(now)
                return
        self._emit(self._event_for(snap))

    def _event_for(self, snap: _Snapshot) -> ConfigEvent | None:
        """The event for a read, or None when it is the save we saw last time."""
        if snap.error is not None:
            seen: Seen = (snap.after or (0, 0, 0), repr(snap.error))
        elif snap.after is not None and snap.data is not None:
            seen = (snap.after, hashlib.sha256(snap.data).hexdigest())
        else:
            seen = None
        if seen == self._seen:
            return None
        self._seen = seen
        source = str(self.path)
        if snap.error is not None:
            error = snap.error
            return ConfigRejected(ConfigError(f"cannot read {source}: {error}", source=source))
        if snap.data is None:
            return ConfigRejected(
                ConfigError(
                    f"{source} was deleted; keeping the last good config",
                    hint="restore it; the embedded defaults apply only from the next start",
                    source=source,
                )
            )
        try:
            text = snap.data.decode("utf-8")
            return ConfigChanged(resolve_saved(text, source, self.env).config)
        except UnicodeDecodeError as e:
            return ConfigRejected(ConfigError(f"{source}: not UTF-8 text: {e}", source=source))
        except ConfigError as e:
            return ConfigRejected(e)

    def _emit(self, event: ConfigEvent | None) -> None:
        if event is None:
            return
        if isinstance(event, ConfigRejected):
            if str(event.error) == self._last_error:
                return
            self._last_error = str(event.error)
        else:
            self._last_error = ""
        try:
            self.deliver(event)
        except Exception:  # a consumer's bug must not end the watching (logged, not hidden)
            log.exception("delivering a config event failed")
