"""A stale dockerd.pid (a crash, or a restart whose run directory survived) never stops the
inner engine from starting; a live dockerd's pid file is left alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal_common.errors import EngineUnavailable
from hal_common.layout import ParentLayout
from parent_agent.adapters.dockerd import Dockerd, remove_stale_pidfile


@pytest.fixture
def pidfile(tmp_path: Path) -> Path:
    return tmp_path / "dockerd.pid"


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # reaped: no such process (unless reused at once, which a test can't stop)


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def live_dockerd(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A live process whose command name is `dockerd` (a copy of sleep)."""
    exe = tmp_path / "dockerd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "60"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("content", ["", "garbage\n", "-5\n", "0\n", "99999999999999999999\n"])
def test_a_pid_file_without_a_pid_is_removed(pidfile: Path, content: str) -> None:
    pidfile.write_text(content)
    remove_stale_pidfile(pidfile)
    assert not pidfile.exists()


def test_a_dead_pid_is_removed(pidfile: Path) -> None:
    pidfile.write_text(f"{_dead_pid()}\n")
    remove_stale_pidfile(pidfile)
    assert not pidfile.exists()


def test_a_pid_from_a_previous_boot_now_used_by_another_process_is_removed(
    pidfile: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """After a restart pids start again from 1: the file's pid may be tini or hal-agent now."""
    pidfile.write_text(f"{sleeper.pid}\n")
    remove_stale_pidfile(pidfile)
    assert not pidfile.exists()
    pidfile.write_text(f"{os.getpid()}\n")  # even our own
    remove_stale_pidfile(pidfile)
    assert not pidfile.exists()


def test_a_live_dockerds_pid_file_stays(
    pidfile: Path, live_dockerd: subprocess.Popen[bytes]
) -> None:
    pidfile.write_text(f"{live_dockerd.pid}\n")
    remove_stale_pidfile(pidfile)
    assert pidfile.read_text() == f"{live_dockerd.pid}\n"
    live_dockerd.kill()
    live_dockerd.wait()
    remove_stale_pidfile(pidfile)
    assert not pidfile.exists()


def test_start_clears_a_stale_pid_file_before_dockerd_runs(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real start path, with a stand-in `dockerd` on PATH that records whether the pid
    file was still there when it ran, then fails (no engine needed)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    seen = tmp_path / "seen"
    fake = bindir / "dockerd"
    layout = ParentLayout(run_dir=tmp_path / "run", log_dir=tmp_path / "log")
    fake.write_text(
        f'#!/bin/sh\nif [ -e "{layout.dockerd_pidfile}" ]; then echo stale; else echo clear; fi'
        f' > "{seen}"\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    layout.run_dir.mkdir()
    layout.dockerd_pidfile.write_text(f"{sleeper.pid}\n")  # a live pid, but not a dockerd
    with pytest.raises(EngineUnavailable, match="dockerd exited with code 1"):
        Dockerd(layout).start(timeout=5)
    assert seen.read_text() == "clear\n"
