"""The config watcher against real watchdog observers on temp directories.

"Exactly one" is shown by the first event arriving and then nothing more within a bounded
window (1.5 x the debounce, plus one poll interval when polling). No sleeps wait for anything
to settle; the only pause is the slow writer's, which is what that test is about.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from hal_common.config import Config, WatchConfig, parse_config
from hal_common.errors import ConfigError
from parent_agent.adapters.config_watch import (
    DEBOUNCE,
    ConfigChanged,
    ConfigEvent,
    ConfigRejected,
    ConfigWatcher,
)

POLL = 0.1  # poll interval in these tests: several polls fit in one debounce
TIMEOUT = 5.0  # generous bound for an event that must come


def _text(memory: str) -> str:
    return f'# my config\n[worker]\nmemory = "{memory}"  # per worker\ncpus = 1\n'


class Watched:
    """A started watcher delivering into a queue, as the agent loop's inbox."""

    def __init__(self, path: Path, mode: str, native: Callable[[], BaseObserver]) -> None:
        self.events: queue.Queue[ConfigEvent] = queue.Queue()
        watch = WatchConfig(mode, POLL)
        self.watcher = ConfigWatcher(path, self.events.put, watch=watch, env={}, native=native)
        self.initial = self.watcher.start()

    def next(self) -> ConfigEvent:
        return self.events.get(timeout=TIMEOUT)

    def changed(self) -> Config:
        ev = self.next()
        assert isinstance(ev, ConfigChanged), ev
        return ev.config

    def rejected(self) -> ConfigError:
        ev = self.next()
        assert isinstance(ev, ConfigRejected), ev
        return ev.error

    def quiet(self) -> None:
        """Nothing more arrives within the window."""
        window = 1.5 * DEBOUNCE + (POLL if self.watcher.kind == "poll" else 0)
        with pytest.raises(queue.Empty):
            ev = self.events.get(timeout=window)
            pytest.fail(f"a second event arrived: {ev}")


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def watch(tmp_path: Path, no_thread_leaks: None) -> Iterator[Callable[..., Watched]]:
    started: list[Watched] = []

    def start(mode: str = "auto", native: Callable[[], BaseObserver] = Observer) -> Watched:
        w = Watched(tmp_path / "hal9000" / "config.toml", mode, native)
        started.append(w)
        return w

    yield start
    for w in started:
        w.watcher.stop()


# -- the ways editors and tools save ---------------------------------------------------------


def in_place(path: Path, text: str) -> None:
    with open(path, "w") as f:  # truncate, then write: two changes, one save
        f.write(text)


def rename_over(path: Path, text: str) -> None:
    """As `sed -i` and atomic savers do: a temp file in the same directory, renamed over."""
    tmp = path.parent / f".{path.name}.swp"
    tmp.write_text(text)
    os.replace(tmp, path)


def vim_backup(path: Path, text: str) -> None:
    """As vim with `nobackupcopy`: the original renamed away, a new file written."""
    backup = path.parent / f"{path.name}~"
    os.rename(path, backup)
    path.write_text(text)
    backup.unlink()


def delete_recreate(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text)


def slow_two_chunks(path: Path, text: str) -> None:
    """A slow writer: half the file (cut inside a value), a pause shorter than the debounce,
    then the rest. Alone, the first half is invalid TOML."""
    cut = text.index('"') + 2
    with open(path, "w") as f:
        f.write(text[:cut])
        f.flush()
        os.fsync(f.fileno())
        threading.Event().wait(DEBOUNCE / 3)  # the writer's pause, not a wait for the watcher
        f.write(text[cut:])


SAVES = [in_place, rename_over, vim_backup, delete_recreate, slow_two_chunks]


@pytest.mark.parametrize("mode", ["auto", "inotify", "poll"])
@pytest.mark.parametrize("save", SAVES, ids=lambda f: f.__name__)
def test_each_save_pattern_gives_exactly_one_reload(
    watch: Callable[..., Watched], tmp_path: Path, mode: str, save: Callable[[Path, str], None]
) -> None:
    path = tmp_path / "hal9000" / "config.toml"
    path.parent.mkdir()
    path.write_text(_text("1g"))
    w = watch(mode)
    assert isinstance(w.initial, ConfigChanged) and w.initial.config.worker.memory == "1g"
    assert w.watcher.kind == ("poll" if mode == "poll" else "inotify")
    for memory in ("2g", "3g"):
        save(path, _text(memory))
        assert w.changed().worker.memory == memory
        w.quiet()


def test_hal_agent_config_set_gives_one_reload(
    watch: Callable[..., Watched], tmp_path: Path
) -> None:
    from hal_common.config_edit import set_in_file

    w = watch()
    set_in_file(w.watcher.path, "worker.memory", "2g")  # creates the file and directory
    assert w.changed().worker.memory == "2g"
    w.quiet()
    set_in_file(w.watcher.path, "worker.cpus", "3")
    assert w.changed().worker.cpus == 3.0
    w.quiet()


def test_a_resave_of_the_same_text_is_still_a_reload(
    watch: Callable[..., Watched], tmp_path: Path
) -> None:
    w = watch()
    path = w.watcher.path
    rename_over(path, _text("2g"))
    first = w.changed()
    rename_over(path, _text("2g"))
    assert w.changed() == first  # the consumer diffs and finds nothing to do
    w.quiet()


# -- bad saves never replace the running config ----------------------------------------------

BAD = [
    ("syntax", "[worker\nmemory = 1\n", (1, 8), "Unexpected character"),
    ("wrong_type", '[worker]\ncpus = "two"\n', (2, 8), "[worker].cpus must be a number"),
    ("bad_value", '[worker]\n\nnetwork = "wifi"\n', (3, 11), "expected one of host, bridge"),
    ("empty", "", (1, 1), "the file is empty"),
    ("truncated", '[worker]\nmemory = "2', (2, None), "config.toml:2:"),
    ("truncated_header", '[worker]\nmemory = "2g"\n[dashb', (3, None), "config.toml:3:"),
]


@pytest.mark.parametrize("mode", ["auto", "poll"])
@pytest.mark.parametrize(("text", "where", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_file_is_rejected_once_and_the_next_good_save_applies(
    watch: Callable[..., Watched],
    mode: str,
    text: str,
    where: tuple[int, int | None],
    needle: str,
) -> None:
    w = watch(mode)
    path = w.watcher.path
    rename_over(path, _text("2g"))
    assert w.changed().worker.memory == "2g"

    in_place(path, text)
    error = w.rejected()
    assert error.source == str(path) and needle in error.message
    assert error.line == where[0] and (where[1] is None or error.column == where[1])
    w.quiet()
    in_place(path, text)  # saved again, same problem: not reported again
    w.quiet()

    rename_over(path, _text("3g"))
    assert w.changed().worker.memory == "3g"
    w.quiet()


@pytest.mark.parametrize("mode", ["auto", "poll"])
def test_a_deleted_file_is_an_error_not_the_defaults(
    watch: Callable[..., Watched], mode: str
) -> None:
    w = watch(mode)
    path = w.watcher.path
    rename_over(path, _text("2g"))
    assert w.changed().worker.memory == "2g"
    path.unlink()
    error = w.rejected()
    assert error.message == f"{path} was deleted; keeping the last good config"
    w.quiet()
    path.write_text(_text("4g"))
    assert w.changed().worker.memory == "4g"
    w.quiet()


def test_a_file_bad_at_start_is_returned_not_delivered(
    watch: Callable[..., Watched], tmp_path: Path
) -> None:
    path = tmp_path / "hal9000" / "config.toml"
    path.parent.mkdir()
    path.write_text("[worker]\npids = -1\n")
    w = watch()
    assert isinstance(w.initial, ConfigRejected) and w.initial.error.line == 2
    in_place(path, "[worker]\npids = -1\n")  # the same error: already known to the consumer
    w.quiet()
    in_place(path, "[worker]\npids = 5\n")
    assert w.changed().worker.pids == 5


def test_no_file_at_start_means_the_defaults_with_env(tmp_path: Path) -> None:
    got: list[ConfigEvent] = []
    path = tmp_path / "new" / "config.toml"
    w = ConfigWatcher(path, got.append, env={"HAL9000_WORKER_PIDS": "7"})
    initial = w.start()
    w.stop()
    assert initial == ConfigChanged(parse_config("[worker]\npids = 7\n"))
    assert path.parent.is_dir() and got == []


# -- observers: fallback, safety net, reconfiguring ------------------------------------------


class _InotifyExhausted(InotifyObserver):
    """An inotify observer whose start fails as when fs.inotify.max_user_instances is reached.

    A fake because exhausting the real limit would break every other watcher of this user.
    """

    def on_thread_start(self) -> None:
        raise OSError(errno.EMFILE, "inotify instance limit reached")


def test_auto_falls_back_to_polling_when_inotify_cannot_start(
    watch: Callable[..., Watched],
) -> None:
    w = watch("auto", native=_InotifyExhausted)
    assert w.watcher.kind == "poll"
    rename_over(w.watcher.path, _text("2g"))
    assert w.changed().worker.memory == "2g"
    w.quiet()


def test_forced_inotify_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    w = ConfigWatcher(
        tmp_path / "config.toml",
        lambda ev: None,
        watch=WatchConfig("inotify"),
        native=_InotifyExhausted,
    )
    with pytest.raises(ConfigError, match=r"cannot watch .* limit reached") as e:
        w.start()
    assert 'mode = "poll"' in e.value.hint
    w.stop()
    assert set(threading.enumerate()) == before


def _deaf() -> PollingObserver:
    """A real observer that hears nothing in time (it polls hourly): a mount where inotify
    events never arrive, as bind mounts from macOS or Windows hosts."""
    return PollingObserver(timeout=3600)


def test_auto_catches_saves_that_events_never_report(watch: Callable[..., Watched]) -> None:
    w = watch("auto", native=_deaf)
    path = w.watcher.path
    for memory, save in [("2g", rename_over), ("3g", in_place), ("4g", slow_two_chunks)]:
        save(path, _text(memory))
        assert w.changed().worker.memory == memory
        w.quiet()
    path.unlink()
    assert "was deleted" in w.rejected().message


def test_reconfigure_switches_observer_and_keeps_state(watch: Callable[..., Watched]) -> None:
    w = watch("auto")
    path = w.watcher.path
    rename_over(path, _text("2g"))
    assert w.changed().worker.memory == "2g"
    w.watcher.reconfigure(WatchConfig("poll", POLL))
    assert w.watcher.kind == "poll"
    w.quiet()  # nothing changed: switching delivers nothing
    in_place(path, _text("3g"))
    assert w.changed().worker.memory == "3g"
    w.quiet()


def test_a_failing_consumer_does_not_stop_the_watching(
    tmp_path: Path, no_thread_leaks: None
) -> None:
    events: queue.Queue[ConfigEvent] = queue.Queue()
    failed = threading.Event()

    def deliver(ev: ConfigEvent) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("consumer bug")
        events.put(ev)

    path = tmp_path / "config.toml"
    w = ConfigWatcher(path, deliver, env={})
    w.start()
    try:
        rename_over(path, _text("2g"))
        assert failed.wait(TIMEOUT)
        rename_over(path, _text("3g"))
        got = events.get(timeout=TIMEOUT)
        assert isinstance(got, ConfigChanged) and got.config.worker.memory == "3g"
    finally:
        w.stop()


def test_stop_joins_every_thread_and_can_be_called_twice(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    for mode in ("auto", "inotify", "poll"):
        w = ConfigWatcher(tmp_path / "config.toml", lambda ev: None, watch=WatchConfig(mode))
        w.start()
        assert len(set(threading.enumerate()) - before) >= 2  # observer thread(s) + settle
        w.stop()
        w.stop()
        assert set(threading.enumerate()) == before
