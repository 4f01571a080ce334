"""Watch the config file and hand each settled save to the agent loop as one typed event.

Adapter over watchdog. It watches the file's *directory* (editors save by rename; the parent
sees a bind-mounted directory, never a single-file mount) and matches both `src_path` and
`dest_path` against the file name. Events only poke a debouncer: when the file has been quiet
for `debounce` seconds it is read once, and `deliver` gets one of

- `ConfigChanged(config)` for a valid save (every one; the consumer diffs), or
- `ConfigRejected(error)` for an empty, unreadable, invalid or deleted file; the same error
  twice in a row is delivered once, and the consumer keeps its last good config.

A save is recognised by the file's (inode, mtime, size, content hash): events that change none
of them (our own reads, a late duplicate, a chmod) deliver nothing.

Observers, by `mode`:
- `inotify`: the platform's native events only (inotify on Linux).
- `poll`: watchdog's PollingObserver, every `poll_interval` seconds.
- `auto`: native events when the observer starts (else, e.g. inotify limits reached, polling),
  plus a stat of the one file every `poll_interval` seconds as a safety net for mounts where
  events never arrive (Docker Desktop bind mounts from macOS or Windows hosts). The stat costs
  one syscall; a change it sees goes through the same debounce and dedup, so a save that both
  paths notice still gives one delivery.

Threads never decide anything: the observer's threads and one `config-settle` thread only call
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


def _read(path: Path) -> tuple[Seen, bytes | None, OSError | None]:
    """The file's identity and bytes, from one open file (so they agree)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        return None, None, None
    except OSError as e:
        return ((0, 0, 0), repr(e)), None, e
    seen = ((st.st_ino, st.st_mtime_ns, st.st_size), hashlib.sha256(data).hexdigest())
    return seen, data, None


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
        self._pending = False
        self._deadline = 0.0
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
        self._stopping, self._seen, self._last_error = False, None, ""
        self._observer, self.kind = self._start_observer()
        initial = self._settle()  # after the observer starts, so no save falls in between
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
            self._pending = True
            self._deadline = time.monotonic() + self.debounce
            self._cond.notify_all()

    def _run(self) -> None:
        safety_net = self.watch.mode == "auto" and self.kind == "inotify"
        interval = self.watch.poll_interval
        next_check = time.monotonic() + interval
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                due = self._pending and now >= self._deadline
                check = safety_net and not due and now >= next_check
                if not due and not check:
                    waits = [self._deadline - now] if self._pending else []
                    waits += [next_check - now] if safety_net else []
                    self._cond.wait(min(waits) if waits else None)
                    continue
                self._pending = self._pending and not due
            if due:
                self._emit(self._settle())
            else:
                next_check = now + interval
                self._check_stat()

    def _check_stat(self) -> None:
        """The safety net: the file differs from the last save we settled, yet no event came."""
        seen = self._seen[0] if self._seen else None
        if _stat(self.path) == seen:
            return
        with self._cond:
            if self._pending:  # an event got there first
                return
        if not self._net_warned:
            self._net_warned = True
            log.info("config change seen by stat, not by file events; is the directory a mount?")
        self._poke()

    def _settle(self) -> ConfigEvent | None:
        """Read the file once; the event for it, or None when nothing changed since last time."""
        seen, data, error = _read(self.path)
        if seen == self._seen:
            return None
        self._seen = seen
        source = str(self.path)
        if error is not None:
            return ConfigRejected(ConfigError(f"cannot read {source}: {error}", source=source))
        if data is None:
            return ConfigRejected(
                ConfigError(
                    f"{source} was deleted; keeping the last good config",
                    hint="restore it; the embedded defaults apply only from the next start",
                    source=source,
                )
            )
        try:
            text = data.decode("utf-8")
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
