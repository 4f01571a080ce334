"""The parent's reader of the workers' hook reports, on real files, with the real
`hal-worker hook` (the worker image's script, run here by sh): reports come out in order,
once; what a hostile worker plants (links to another worker's directory, FIFOs,
directories, huge or malformed files, floods) is refused, costs bounded work, and never
blocks or stops the watcher."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from libtmux.test.retry import retry_until

from hal_common.layout import ParentLayout
from parent_agent.adapters import agent_reports, inotify, untrusted
from parent_agent.adapters.agent_reports import (
    MAX_NAMES,
    MAX_READS,
    AgentReport,
    ReportWatcher,
    parse,
    read_reports,
)
from parent_agent.adapters.untrusted import directory

HAL_WORKER = Path(__file__).resolve().parents[3] / "host_shim" / "images" / "hal-worker"


def payload(event: str, **kw: str) -> bytes:
    return json.dumps({"hook_event_name": event, **kw}).encode()


@pytest.fixture
def layout(tmp_path: Path) -> ParentLayout:
    return ParentLayout(run_dir=tmp_path / "run", data_dir=tmp_path / "data")


def report_dir(layout: ParentLayout, session: str) -> Path:
    d = layout.worker_reports(session)
    d.mkdir(parents=True, exist_ok=True)
    return d


def hook(d: Path | str, data: bytes, timeout: float = 5) -> subprocess.CompletedProcess[bytes]:
    """The worker's `hal-worker hook`, as Claude Code runs it: stdin the event's JSON."""
    env = {"PATH": os.environ["PATH"], "HAL_WORKER_REPORT_DIR": str(d)}
    return subprocess.run(
        ["sh", str(HAL_WORKER), "hook"],
        input=data,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_hal_worker_hook_writes_one_file_prints_nothing_and_the_watcher_reads_it_in_order(
    layout: ParentLayout,
) -> None:
    d = report_dir(layout, "proj-1")
    sid = "0b9c2d36-5a8e-4c3f-9a61-2f0e8d7c6b5a"
    for event in ("SessionStart", "UserPromptSubmit", "Stop"):
        res = hook(d, payload(event, session_id=sid, source="startup"))
        assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    names = sorted(os.listdir(d))
    assert len(names) == 3 and all(agent_reports.REPORT_NAME.match(n) for n in names), names
    got = ReportWatcher(layout, lambda r: None).scan()
    assert [r.session for r in got] == ["proj-1"]
    (report,) = got
    assert [e.event for e in report.events] == ["SessionStart", "UserPromptSubmit", "Stop"]
    assert all(e.session_id == sid for e in report.events)
    assert os.listdir(d) == []  # read once, deleted
    assert ReportWatcher(layout, lambda r: None).scan() == []


def test_hal_worker_hook_never_fails_and_bounds_what_it_writes(tmp_path: Path) -> None:
    # no report directory (a worker started by an older parent): nothing written, exit 0
    res = hook(tmp_path / "missing", payload("Stop"))
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    assert not (tmp_path / "missing").exists()
    # a huge payload is cut at 64 KiB, and the writer is not left with a broken pipe
    d = tmp_path / "r"
    d.mkdir()
    t0 = time.monotonic()
    res = hook(d, b"x" * (1 << 20))
    assert res.returncode == 0 and time.monotonic() - t0 < 3
    (name,) = os.listdir(d)
    assert (d / name).stat().st_size == agent_reports.MAX_REPORT
    # not writable (the worker chmod'ed its own directory): nothing, exit 0
    if os.geteuid() != 0:
        d.chmod(0o500)
        assert hook(d, payload("Stop")).returncode == 0


def test_parse_bounds_and_rejects() -> None:
    assert parse(payload("Stop")) is not None
    assert parse(payload("Stop") + b" " * agent_reports.MAX_REPORT) is None  # over the cap
    assert parse(b"[" * 60000 + b"]" * 60000) is None  # nested too deep
    assert parse(b'{"hook_event_name": "Stop", "n": ' + b"9" * 50000 + b"}") is None
    assert parse(b"\xff\xfe not json") is None
    assert parse(b'"Stop"') is None and parse(b"[]") is None
    assert parse(payload("NotAnEvent")) is None
    ev = parse(payload("Notification", message="\x1b[31mneeds\nyou\x07", session_id="x"))
    assert ev is not None and ev.message == "[31mneeds you" and ev.session_id is None


def test_links_fifos_dirs_and_junk_are_refused_and_removed_never_followed(
    layout: ParentLayout,
) -> None:
    a, b = report_dir(layout, "a"), report_dir(layout, "b")
    (b / "100-1.json").write_bytes(payload("Stop"))
    theirs = b / ".100-2.tmp"  # one B is writing
    theirs.write_bytes(payload("SessionEnd"))
    secret = layout.data_dir / "secret.json"
    secret.write_bytes(payload("UserPromptSubmit"))
    # in A: links to B's report and B's directory, and to a parent file; a FIFO; a dir;
    # a hard link; a huge file; bad JSON; a good report among them
    (a / "1-1.json").symlink_to(theirs)
    (a / "2-1.json").symlink_to(secret)
    os.symlink(b, a / "3-1.json")
    os.mkfifo(a / "4-1.json")
    (a / "5-1.json").mkdir()
    (a / "6-1.json").write_bytes(b"y" * 100_000)
    (a / "7-1.json").write_bytes(b"{not json")
    (a / "8-1.json").write_bytes(payload("Notification", notification_type="permission_prompt"))
    os.link(a / "8-1.json", a / "9-1.json")  # two names: the first refused, then one is left
    (a / "10-1.json").write_bytes(payload("PreToolUse", tool_name="Bash"))
    (a / "junk").write_bytes(b"x")
    (a / ".1-1.tmp").write_bytes(b"being written")
    full = a / "full"
    full.mkdir()
    (full / "x").write_bytes(b"x")
    t0 = time.monotonic()
    got = {r.session: r.events for r in ReportWatcher(layout, lambda r: None).scan()}
    assert time.monotonic() - t0 < 2  # the FIFO never blocked
    # by name ("10-1" < "9-1"); of the hard link's names, the one left alone once the other
    # went (a file of its own directory: no harm)
    assert [e.event for e in got["a"]] == ["PreToolUse", "Notification"]
    assert [e.event for e in got["b"]] == ["Stop"]  # B's own, once
    # what was followed: nothing; what is left: the file being written and a full dir
    assert theirs.read_bytes() == payload("SessionEnd") and secret.exists()
    assert sorted(os.listdir(a)) == [".1-1.tmp", "full"]
    assert os.listdir(b) == [theirs.name]
    # an abandoned temp file goes once stale
    with directory(a) as fd:
        assert read_reports(fd, now=time.time() + agent_reports.STALE_TMP_S + 1) == []
    assert os.listdir(a) == ["full"]


def test_a_report_directory_replaced_by_a_link_is_refused(layout: ParentLayout) -> None:
    b = report_dir(layout, "b")
    (b / "1-1.json").write_bytes(payload("Stop"))
    a = layout.worker_reports("a")
    a.parent.mkdir(parents=True)
    a.symlink_to(b)  # A reports "for" B through a link to its directory
    got = ReportWatcher(layout, lambda r: None).scan()
    assert [(r.session, len(r.events)) for r in got] == [("b", 1)]


def test_a_flood_costs_bounded_work_per_scan_and_drains(layout: ParentLayout) -> None:
    d = report_dir(layout, "flood")
    for i in range(5000):
        (d / f"{1000 + i}-{i}.json").write_bytes(payload("PreToolUse", tool_name=f"T{i}"))
    for i in range(2000):
        (d / f"junk{i}").write_bytes(b"x")
    w = ReportWatcher(layout, lambda r: None)
    seen: list[str] = []
    scans = 0
    while scans < 100:
        t0 = time.monotonic()
        got = w.scan()
        scans += 1
        assert time.monotonic() - t0 < 1.0
        if not got and not os.listdir(d):
            break
        for r in got:
            assert len(r.events) <= MAX_READS
            seen.extend(e.tool_name for e in r.events)
    assert not os.listdir(d)
    assert len(seen) == 5000 and scans >= (5000 + 2000) // MAX_NAMES
    # within each scan the events came by name; over the whole flood, each once
    assert len(set(seen)) == 5000


def test_the_watcher_thread_delivers_and_survives_its_callback(
    layout: ParentLayout,
) -> None:
    """The thread reads what arrives and goes on after its callback raised. (How fast is the
    benchmark's row 10, not a timed test.)"""
    d = report_dir(layout, "w")
    got: list[AgentReport] = []
    arrived, raised = threading.Event(), threading.Event()
    calls = 0

    def put(r: AgentReport) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raised.set()
            raise RuntimeError("a bug in the loop's callback")
        got.append(r)
        arrived.set()

    w = ReportWatcher(layout, put, interval=0.05)
    w.start()
    try:
        # as the hook writes (temp file, then rename): a file seen half-written is not read again
        (d / ".1-1.tmp").write_bytes(payload("Stop"))
        (d / ".1-1.tmp").rename(d / "1-1.json")  # its put raises
        assert raised.wait(10)  # read on its own, before the next one is written
        os.mkfifo(d / "2-1.json")
        assert hook(d, payload("UserPromptSubmit")).returncode == 0
        assert arrived.wait(10)
        assert [e.event for e in got[0].events] == ["UserPromptSubmit"]
    finally:
        w.stop()
    assert w._thread is None


def test_many_workers_each_get_their_own(layout: ParentLayout) -> None:
    for n in range(20):
        d = report_dir(layout, f"s{n}")
        (d / "1-1.json").write_bytes(
            payload("Stop", session_id=f"{n:08d}-0000-0000-0000-000000000000")
        )
    got = {r.session: r.events for r in ReportWatcher(layout, lambda r: None).scan()}
    assert len(got) == 20
    assert got["s7"][0].session_id == "00000007-0000-0000-0000-000000000000"


def test_names_are_bounded(layout: ParentLayout) -> None:
    d = report_dir(layout, "n")
    for i in range(MAX_NAMES * 2):
        (d / f"x{i}").write_bytes(b"")
    with directory(d) as fd:
        assert read_reports(fd) == []
    assert len(os.listdir(d)) == MAX_NAMES


def test_between_sweeps_only_changed_directories_are_read(
    layout: ParentLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle workers cost an lstat each, no open; a new report is read at once, also when the
    worker put its directory's mtime back (its ctime moved: a worker cannot set that)."""
    monkeypatch.setattr(agent_reports, "RECENT_NS", 200_000_000)  # a shorter wait, same rule
    for n in range(20):
        report_dir(layout, f"w{n}")
    time.sleep(0.25)  # made just now: they would count as changed lately
    w = ReportWatcher(layout, lambda r: None)
    assert w.scan(full=True) == []
    opened: list[str] = []
    real = untrusted.directory

    def counting(root: Path, rel: PurePosixPath) -> Any:  # our own seam: which dirs are opened
        opened.append(str(rel))
        return real(root, rel)

    monkeypatch.setattr(untrusted, "directory", counting)
    assert w.scan(full=False) == [] and opened == []
    d = report_dir(layout, "w7")
    before = d.stat()
    (d / "1-1.json").write_bytes(payload("Stop"))
    os.utime(d, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime put back
    (got,) = w.scan(full=False)
    assert got.session == "w7" and [e.event for e in got.events] == ["Stop"]
    assert opened == ["w7/report"]
    # changed within the last second: read on each pass (file times are coarse), then not
    opened.clear()
    assert w.scan(full=False) == [] and opened == ["w7/report"]
    time.sleep(0.25)
    w.scan(full=False)
    opened.clear()
    assert w.scan(full=False) == [] and opened == []


class Opened:
    """Which report directories the watcher opens (our own seam: `untrusted.directory`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        self.lock = threading.Lock()
        real = untrusted.directory

        def counting(root: Path, rel: PurePosixPath) -> Any:
            with self.lock:
                self.names.append(str(rel))
            return real(root, rel)

        monkeypatch.setattr(untrusted, "directory", counting)

    def take(self) -> list[str]:
        with self.lock:
            out, self.names = self.names, []
        return out


def running(layout: ParentLayout, got: list[AgentReport], interval: float = 0.2) -> ReportWatcher:
    w = ReportWatcher(layout, got.append, interval=interval)
    w.start()
    return w


def arrived(got: list[AgentReport], session: str, within: float = 5.0) -> list[str]:
    def events() -> list[str]:
        return [e.event for r in list(got) if r.session == session for e in r.events]

    retry_until(lambda: bool(events()), within, raises=False)
    return events()


def test_the_running_watcher_reads_nothing_while_workers_idle_and_a_report_at_once(
    layout: ParentLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify, not polling: twenty idle workers' directories are opened once when first
    seen, then not again before the sweep; a report is read as soon as it is written."""
    for n in range(20):
        report_dir(layout, f"w{n}")
    opened = Opened(monkeypatch)
    got: list[AgentReport] = []
    w = running(layout, got)
    try:
        retry_until(lambda: len(opened.names) >= 20, 5, raises=False)
        first = opened.take()
        assert sorted(first) == sorted(f"w{n}/report" for n in range(20))
        time.sleep(1.5)  # (a span with nothing in it) several rounds of looking: none opened
        assert opened.take() == []
        t0 = time.monotonic()
        assert hook(report_dir(layout, "w7"), payload("Stop")).returncode == 0
        assert arrived(got, "w7") == ["Stop"]
        assert time.monotonic() - t0 < 0.5
        assert opened.take() == ["w7/report"]  # the reader's own deletion wakes nothing
        time.sleep(0.6)  # (a span with nothing in it) more than two rounds
        assert opened.take() == []
    finally:
        w.stop()


def test_a_new_worker_and_a_remade_directory_are_watched(
    layout: ParentLayout,
) -> None:
    """A worker made while the watcher runs (its report written before any watch could be
    there: read all the same), and one whose directory went and came back (a new inode)."""
    got: list[AgentReport] = []
    w = running(layout, got)
    try:
        d = report_dir(layout, "late")
        (d / "1-1.json").write_bytes(payload("SessionStart"))
        assert arrived(got, "late") == ["SessionStart"]
        got.clear()
        d.rmdir()
        assert retry_until(lambda: "late" not in w._watch, 5, raises=False)  # IN_IGNORED
        report_dir(layout, "late")
        assert retry_until(lambda: "late" in w._watch, 5, raises=False)  # watched again
        assert hook(d, payload("Stop")).returncode == 0
        assert arrived(got, "late", within=2.0) == ["Stop"]
    finally:
        w.stop()


def test_a_directory_the_kernel_will_not_watch_is_polled(
    layout: ParentLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's limit of watches reached (max_user_watches): our seam's `add` refuses as
    the kernel would (ENOSPC); that worker's reports still arrive, by polling."""

    def refuse(self: inotify.Inotify, path: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inotify.Inotify, "add", refuse)
    d = report_dir(layout, "p")
    got: list[AgentReport] = []
    w = running(layout, got)
    try:
        assert retry_until(lambda: "p" in w._unwatched, 5, raises=False)
        assert hook(d, payload("Stop")).returncode == 0
        assert arrived(got, "p") == ["Stop"]
    finally:
        w.stop()


def test_inotify_events_parse_bounded_and_an_overflow_is_said() -> None:
    ev = inotify.HEADER.pack
    buf = (
        ev(3, inotify.IN_MOVED_TO, 0, 16) + b"1-1.json".ljust(16, b"\0")
        + ev(4, inotify.IN_CLOSE_WRITE, 0, 0)
        + ev(5, inotify.IN_IGNORED, 0, 0)
        + ev(5, inotify.IN_CLOSE_WRITE, 0, 0)  # a watch both changed and gone: gone
        + ev(7, inotify.IN_CLOSE_WRITE, 0, 16) + b".1-1.tmp".ljust(16, b"\0")  # being written
        + ev(-1, inotify.IN_Q_OVERFLOW, 0, 0)
        + ev(6, inotify.IN_CLOSE_WRITE, 0, 64)  # its name cut off: not counted
    )  # fmt: skip
    news = inotify.parse(buf[: len(buf) - 8])
    assert news == inotify.News(frozenset({3, 4}), frozenset({5}), overflow=True)
    assert inotify.parse(b"\x01\x02") == inotify.News()


def test_an_overflowed_queue_reads_every_directory(
    layout: ParentLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        report_dir(layout, f"o{n}")
    w = ReportWatcher(layout, lambda r: None)
    w._notify = inotify.Inotify.open()  # as start() sets it for its thread
    assert w._notify is not None
    try:
        w._round(inotify.News())  # each directory watched, and read once
        opened = Opened(monkeypatch)
        w._round(inotify.News())  # nothing said, no sweep due: nothing read
        assert opened.take() == []
        w._round(inotify.News(overflow=True))
        assert len(opened.take()) == 5
    finally:
        w._notify.close()
