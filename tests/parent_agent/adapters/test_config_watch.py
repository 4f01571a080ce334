"""The config watcher against real watchdog observers on temp directories.

"Exactly one" is shown by the expected event arriving (each save's content is checked, so a
late extra event cannot pass for the next save's) and then nothing more within `QUIET`;
teardown checks that no event was left over. No sleeps wait for anything to settle; the only
pauses are the slow writers', which is what those saves are about.

Every save is timed (`Watched.save`). The watcher promises one reload for a save none of whose
half-written states lasts the debounce; a writer that stalled that long (in the kernel on a busy
disk, or descheduled on a loaded machine) has, by that contract, made more than one save, and
its half-written states may each be rejected before the final one arrives. The tests check the
contract for the timing that actually happened, and warn when a save stalled.
"""

from __future__ import annotations

import errno
import itertools
import os
import queue
import threading
import time
import warnings
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
    Settle,
)

POLL = 0.1  # poll interval in these tests: several polls fit in one debounce
TIMEOUT = 5.0  # generous bound for an event that must come
# How long "nothing more" is checked after a delivery. A second delivery for one save would
# mean a state was read that changed after: the change is noticed at once by an event, or up
# to one poll interval later by polling (mode poll, the safety net), and settles a debounce
# after that; half a debounce more is margin for a busy machine. (A correct watcher delivers
# nothing more however long one waits; this bounds how long the tests look.)
QUIET = 1.5 * DEBOUNCE + POLL

# Saves `text` to `path`; returns how long a half-written state can have lasted, when it can
# tell better than the whole save's duration
Save = Callable[[Path, str], float | None]


def _text(memory: str) -> str:
    return f'# my config\n[worker]\nmemory = "{memory}"  # per worker\ncpus = 1\n'


class Watched:
    """A started watcher delivering into a queue, as the agent loop's inbox."""

    def __init__(self, path: Path, mode: str, native: Callable[[], BaseObserver]) -> None:
        self.events: queue.Queue[ConfigEvent] = queue.Queue()
        watch = WatchConfig(mode, POLL)
        self.watcher = ConfigWatcher(path, self.events.put, watch=watch, env={}, native=native)
        self.initial = self.watcher.start()
        self.held = 0.0  # how long a half-written state of the last save can have lasted

    def save(self, how: Save, text: str = "") -> None:
        """Save `text` the way `how` does, timing it."""
        start = time.monotonic()
        held = how(self.watcher.path, text)
        self.held = time.monotonic() - start if held is None else held
        if self.stalled:
            warnings.warn(
                f"{how.__name__}: a half-written state lasted up to {self.held:.2f} s, not "
                f"under the {DEBOUNCE} s debounce; checked as several saves",
                stacklevel=2,
            )

    @property
    def stalled(self) -> bool:
        """A half-written state of the last save may have held still for the debounce, and
        been settled (and rejected) before the final one."""
        return self.held >= DEBOUNCE

    def next(self, final: Callable[[ConfigEvent], bool]) -> ConfigEvent:
        """The last save's delivery: the very next event, or after a stalled save the first
        one that is `final`, past rejections of its half-written states."""
        ev = self.events.get(timeout=TIMEOUT)
        while self.stalled and isinstance(ev, ConfigRejected) and not final(ev):
            warnings.warn(f"a half-written state was rejected: {ev.error}", stacklevel=3)
            ev = self.events.get(timeout=TIMEOUT)
        return ev

    def changed(self) -> Config:
        ev = self.next(lambda ev: isinstance(ev, ConfigChanged))
        assert isinstance(ev, ConfigChanged), ev
        return ev.config

    def rejected(self, needle: str) -> ConfigError:
        """The rejection whose message has `needle`."""
        ev = self.next(lambda ev: isinstance(ev, ConfigRejected) and needle in ev.error.message)
        assert isinstance(ev, ConfigRejected), ev
        assert needle in ev.error.message, ev.error
        return ev.error

    def quiet(self) -> None:
        """Nothing more arrives within `QUIET`; after a stalled save, nothing but rejections
        (its half-written states', and the final state's again after them)."""
        deadline = time.monotonic() + QUIET
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                return
            if not (self.stalled and isinstance(ev, ConfigRejected)):
                pytest.fail(f"a second event arrived: {ev}")
            warnings.warn(f"after a stalled save, rejected again: {ev.error}", stacklevel=2)


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
    for w in started:
        assert w.events.empty(), f"an event nobody waited for: {w.events.get()}"


# -- the settle rule, as plain data (times in seconds, stats as (inode, mtime_ns, size)) -----

OLD, HALF, FULL = (1, 100, 40), (1, 200, 12), (1, 300, 40)


def test_the_debounce_counts_from_the_last_event() -> None:
    s = Settle(DEBOUNCE, OLD)
    s.event(0.0)
    s.event(0.2)
    assert not s.due(0.2 + DEBOUNCE - 0.01)
    assert s.take(0.2 + DEBOUNCE) and not s.pending  # read once ...
    assert not s.take(1.0)
    s.event(1.0)  # ... until the next event
    assert s.take(1.0 + DEBOUNCE)


def test_a_stat_that_shows_a_change_is_an_event() -> None:
    s = Settle(DEBOUNCE, OLD)
    assert not s.saw(OLD, 0.0) and not s.pending  # no change, nothing to do
    assert s.saw(HALF, 0.1) and not s.due(0.1 + DEBOUNCE - 0.01) and s.due(0.1 + DEBOUNCE)
    assert s.saw(FULL, 0.3)  # changed again before the debounce was up: counts from here
    assert not s.due(0.1 + DEBOUNCE) and s.due(0.3 + DEBOUNCE)


def test_a_half_written_file_is_not_due_when_its_last_event_comes_late() -> None:
    """The watcher's loop over a slow writer whose later events arrive after the debounce (a
    busy machine): the first event's debounce runs out while the file still changes, and the
    stat taken then sends it round again; only the final state is read."""
    s = Settle(DEBOUNCE, OLD)
    s.event(0.0)  # the truncation's event; the thread stats the file at once
    s.saw(HALF, 0.0)
    # the rest is written at 0.1; its events are still on their way at the deadline
    assert s.due(DEBOUNCE)
    assert s.saw(FULL, DEBOUNCE)  # the stat at the deadline shows the change: not read
    assert not s.due(2 * DEBOUNCE - 0.01)
    assert s.due(2 * DEBOUNCE) and not s.saw(FULL, 2 * DEBOUNCE)  # held still: read FULL


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
        f.flush()  # written: stat and read see the half file (no fsync: that is for disks)
        threading.Event().wait(DEBOUNCE / 3)  # the writer's pause, not a wait for the watcher
        f.write(text[cut:])


def slow_chunks(path: Path, text: str) -> float:
    """A slower writer: five chunks, each cut where the file so far is invalid, each pause
    shorter than the debounce, all of them longer. Returns how long any half-written state
    lasted at most (from before the write that made it to after the one that replaced it)."""
    cuts = [text.index("[worker") + 4, text.index('"') + 1, text.index("cpus") + 2]
    cuts += [text.index("= 1") + 1, len(text)]
    starts, ends = [time.monotonic()], []
    with open(path, "w") as f:  # the truncation is the first write
        ends.append(time.monotonic())
        for begin, end in itertools.pairwise([0, *cuts]):
            threading.Event().wait(DEBOUNCE / 3)  # the writer's pause
            starts.append(time.monotonic())
            f.write(text[begin:end])
            f.flush()
            ends.append(time.monotonic())
    return max(later - start for start, later in zip(starts, ends[1:], strict=False))


def delete(path: Path, text: str) -> None:
    path.unlink()


def create(path: Path, text: str) -> None:
    path.write_text(text)


def config_set(key: str) -> Save:
    """`hal-agent config set KEY VALUE` (an atomic write that creates what is missing)."""
    from hal_common.config_edit import set_in_file

    def config_set(path: Path, value: str) -> None:
        set_in_file(path, key, value)

    return config_set


SAVES = [in_place, rename_over, vim_backup, delete_recreate, slow_two_chunks, slow_chunks]


@pytest.mark.parametrize("mode", ["auto", "inotify", "poll"])
@pytest.mark.parametrize("save", SAVES, ids=lambda f: f.__name__)
def test_each_save_pattern_gives_exactly_one_reload(
    watch: Callable[..., Watched], tmp_path: Path, mode: str, save: Save
) -> None:
    path = tmp_path / "hal9000" / "config.toml"
    path.parent.mkdir()
    path.write_text(_text("1g"))
    w = watch(mode)
    assert isinstance(w.initial, ConfigChanged) and w.initial.config.worker.memory == "1g"
    assert w.watcher.kind == ("poll" if mode == "poll" else "inotify")
    for memory in ("2g", "3g"):
        w.save(save, _text(memory))
        assert w.changed().worker.memory == memory
        w.quiet()


def test_hal_agent_config_set_gives_one_reload(
    watch: Callable[..., Watched], tmp_path: Path
) -> None:
    w = watch()
    w.save(config_set("worker.memory"), "2g")  # creates the file and directory
    assert w.changed().worker.memory == "2g"
    w.quiet()
    w.save(config_set("worker.cpus"), "3")
    assert w.changed().worker.cpus == 3.0
    w.quiet()


def test_a_resave_of_the_same_text_is_still_a_reload(
    watch: Callable[..., Watched], tmp_path: Path
) -> None:
    w = watch()
    w.save(rename_over, _text("2g"))
    first = w.changed()
    w.quiet()  # so the next delivery is the re-save's, not a late one of the first save
    w.save(rename_over, _text("2g"))
    assert w.changed() == first  # the consumer diffs and finds nothing to do
    w.quiet()


# -- bad saves never replace the running config ----------------------------------------------

BAD = [
    ("syntax", "[worker\nmemory = 1\n", (1, 8), "Unexpected character"),
    ("wrong_type", '[worker]\ncpus = "two"\n', (2, 8), "[worker].cpus must be a number"),
    ("bad_value", '[worker]\n\nrestart = "wifi"\n', (3, 11), "expected one of no, on-failure"),
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
    w.save(rename_over, _text("2g"))
    assert w.changed().worker.memory == "2g"

    w.save(in_place, text)
    error = w.rejected(needle)
    assert error.source == str(path)
    assert error.line == where[0] and (where[1] is None or error.column == where[1])
    w.quiet()
    w.save(in_place, text)  # saved again, same problem: not reported again
    w.quiet()

    w.save(rename_over, _text("3g"))
    assert w.changed().worker.memory == "3g"
    w.quiet()


@pytest.mark.parametrize("mode", ["auto", "poll"])
def test_a_deleted_file_is_an_error_not_the_defaults(
    watch: Callable[..., Watched], mode: str
) -> None:
    w = watch(mode)
    path = w.watcher.path
    w.save(rename_over, _text("2g"))
    assert w.changed().worker.memory == "2g"
    w.save(delete)
    error = w.rejected("was deleted")
    assert error.message == f"{path} was deleted; keeping the last good config"
    w.quiet()
    w.save(create, _text("4g"))
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
    w.save(in_place, "[worker]\npids = -1\n")  # the same error: already known to the consumer
    w.quiet()
    w.save(in_place, "[worker]\npids = 500\n")
    assert w.changed().worker.pids == 500


def test_no_file_at_start_means_the_defaults_with_env(tmp_path: Path) -> None:
    got: list[ConfigEvent] = []
    path = tmp_path / "new" / "config.toml"
    w = ConfigWatcher(path, got.append, env={"HAL9000_WORKER_PIDS": "700"})
    initial = w.start()
    w.stop()
    assert initial == ConfigChanged(parse_config("[worker]\npids = 700\n"))
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
    w.save(rename_over, _text("2g"))
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
    saves = [("2g", rename_over), ("3g", in_place), ("4g", slow_two_chunks), ("5g", slow_chunks)]
    for memory, save in saves:
        w.save(save, _text(memory))
        assert w.changed().worker.memory == memory
        w.quiet()
    w.save(delete)
    w.rejected("was deleted")


def test_reconfigure_switches_observer_and_keeps_state(watch: Callable[..., Watched]) -> None:
    w = watch("auto")
    w.save(rename_over, _text("2g"))
    assert w.changed().worker.memory == "2g"
    w.watcher.reconfigure(WatchConfig("poll", POLL))
    assert w.watcher.kind == "poll"
    w.quiet()  # nothing changed: switching delivers nothing
    w.save(in_place, _text("3g"))
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
