"""The parent's log files: rotated by size (python's handler for the agent and the dashboard,
a pipe and a rotating writer for dockerd), read back in order, followed across a rotation."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hal_common.errors import EngineUnavailable
from hal_common.layout import ParentLayout
from parent_agent.adapters import logfiles
from parent_agent.adapters.dockerd import Dockerd


def _lines(n: int, width: int = 40) -> list[bytes]:
    return [f"line {i:06d} ".ljust(width, "x").encode() + b"\n" for i in range(n)]


def test_a_rotating_file_keeps_its_backups_and_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "d.log"
    out = logfiles.RotatingFile(path, max_bytes=1000, backups=2)
    lines = _lines(100)  # 4100 bytes: 5 files' worth, 3 kept
    for line in lines:
        out.write(line)
    out.close()
    assert [p.name for p in logfiles.generations(path, 2)] == ["d.log.2", "d.log.1", "d.log"]
    assert not (tmp_path / "d.log.3").exists()
    assert all(p.stat().st_size <= 1000 for p in logfiles.generations(path, 2))
    kept, read = logfiles.tail_lines(path, None, 2)
    assert kept.splitlines(keepends=True) == lines[-len(kept.splitlines()) :]  # in order
    assert read == path.stat().st_size
    last3, _ = logfiles.tail_lines(path, 3, 2)
    assert last3 == b"".join(lines[-3:])


def test_a_write_that_fails_is_dropped_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    out = logfiles.RotatingFile(blocker / "d.log")
    out.write(b"lost\n")  # the pump must keep reading whatever the disk says
    out.close()


def test_the_agents_handler_rotates_at_its_size(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "agent.log"
    handler = logfiles.file_handler(path, max_bytes=2000, backups=3)
    logger = logging.getLogger("test_logfiles.agent")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(200):
            logger.warning("event %04d %s", i, "y" * 30)
    finally:
        logger.removeHandler(handler)
        handler.close()
    names = [p.name for p in logfiles.generations(path)]
    assert names == ["agent.log.3", "agent.log.2", "agent.log.1", "agent.log"]
    assert all(p.stat().st_size <= 2000 for p in logfiles.generations(path))
    assert logfiles.tail_lines(path, 1)[0].startswith(b"event 0199")


def test_the_pump_copies_a_childs_output_through_rotations_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "dockerd.log"
    script = 'for i in $(seq 1 500); do echo "dockerd says $i"; done; echo last >&2'
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    thread = logfiles.pump(proc.stdout, logfiles.RotatingFile(path, max_bytes=4096, backups=1))
    assert proc.wait(10) == 0
    thread.join(10)
    assert not thread.is_alive()
    assert path.with_name("dockerd.log.1").exists()
    text, _ = logfiles.tail_lines(path, 2, backups=1)
    assert text == b"dockerd says 500\nlast\n"


def test_dockerds_output_goes_through_the_pipe_and_its_tail_says_why_it_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real start path with a stand-in `dockerd` that talks a lot, then fails: its log
    rotates, and the error quotes its last line (the pump is drained before the tail)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dockerd"
    fake.write_text(
        '#!/bin/sh\nfor i in $(seq 1 2000); do echo "level=info msg=starting $i"; done\n'
        'echo "level=fatal msg=cannot mount overlay" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    layout = ParentLayout(run_dir=tmp_path / "run", log_dir=tmp_path / "logs")
    with pytest.raises(EngineUnavailable, match="cannot mount overlay"):
        Dockerd(layout, log_max_bytes=8192).start(timeout=10)
    kept = logfiles.generations(layout.dockerd_log)
    assert len(kept) == 1 + logfiles.BACKUPS, kept
    assert all(p.stat().st_size <= 8192 for p in kept)


def test_follow_reads_on_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    path.write_bytes(b"old\n")
    text, read = logfiles.tail_lines(path, None)
    assert text == b"old\n"
    stop = threading.Event()
    chunks: queue.Queue[bytes] = queue.Queue()
    out = logfiles.RotatingFile(path, max_bytes=32, backups=1)

    def reader() -> None:
        for chunk in logfiles.follow(path, stop, offset=read, interval=0.01):
            chunks.put(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    got = b""
    try:
        for i in range(20):  # 7 bytes each: a rotation every 4 lines
            line = f"new {i:02d}\n".encode()
            out.write(line)
            while not got.endswith(line):  # one line at a time: no rotation is skipped
                got += chunks.get(timeout=5)
    finally:
        stop.set()
        thread.join(5)
        out.close()
    assert got == b"".join(f"new {i:02d}\n".encode() for i in range(20))
    assert path.with_name("agent.log.1").exists()


def test_hal_agent_logs_agent_follows_the_agents_log(tmp_path: Path) -> None:
    """`hal-agent logs --agent -f` as a process: the tail, then what the agent logs next."""
    logs = tmp_path / "logs"
    path = logs / "agent.log"
    handler = logfiles.file_handler(path, max_bytes=60, backups=2)
    record = logging.getLogger("test_logfiles.follow")
    record.propagate = False
    record.addHandler(handler)
    record.warning("before")
    env = {**os.environ, "HAL_LOG_DIR": str(logs), "HAL_RUN_DIR": str(tmp_path / "run")}
    argv = [sys.executable, "-m", "parent_agent", "logs", "--agent", "-f", "--tail", "1"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        assert lines.get(timeout=20) == b"before\n"
        for i in range(30):  # 9 bytes each: past several rotations, a line at a time
            record.warning("after %02d", i)
            assert lines.get(timeout=10) == f"after {i:02d}\n".encode()
        assert path.with_name("agent.log.2").exists()
    finally:
        proc.kill()
        proc.wait()
        record.removeHandler(handler)
        handler.close()


def test_logs_wants_a_name_or_one_of_the_parents_logs(tmp_path: Path) -> None:
    env = {**os.environ, "HAL_LOG_DIR": str(tmp_path / "logs")}
    for args in ([], ["somebody", "--agent"]):
        res = subprocess.run(
            [sys.executable, "-m", "parent_agent", "logs", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == 2 and "say whose log" in res.stderr, res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "parent_agent", "logs", "--dockerd"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0 and res.stdout == "" and "nothing logged yet" in res.stderr
