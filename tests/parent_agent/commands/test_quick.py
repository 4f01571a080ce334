"""hal-agent's quick entry: which command lines it asks of the loop (pure), then the whole
command as a process against a stand-in loop on a real control socket (our own seam: the
real loop's side is in tests/parent_agent/app/test_agent.py), and the full command when
the loop says so or is not there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal_common.layout import ParentLayout
from hal_testing.layout import layout_env
from parent_agent.commands.quick import quick_request
from parent_agent.core.control import MAX_BYTES, Answer, SpawnWorker

from ..adapters.test_control import StandInLoop

ENV = {"PATH": "/usr/bin", "TERM": "xterm"}


@pytest.mark.parametrize(
    ("args", "window", "printed", "fields"),
    [
        (["spawn", "/p"], True, False, {}),
        (["spawn", "/p", "--no-window"], False, True, {}),
        (["spawn", "/p", "--no-attach", "--image-id", "sha256:1"], True, True,
         {"image_id": "sha256:1"}),
        (["spawn", "/p", "--client", "/dev/pts/3", "--name", "n"], True, False,
         {"client": "/dev/pts/3", "name": "n"}),
        (["spawn", "/p", "--image", "hal9000/worker:standard"], True, False,
         {"image": "hal9000/worker:standard"}),
        (["attach", "/p", "--image-id", "x"], True, False, {"image_id": "x"}),
    ],
)  # fmt: skip
def test_the_command_lines_of_a_spawn_are_asked_of_the_loop(
    args: list[str], window: bool, printed: bool, fields: dict[str, str]
) -> None:
    got = quick_request(args, ENV)
    assert got is not None
    req, prints = got
    want = SpawnWorker("/p", window=window, env=tuple(sorted(ENV.items())), **fields)
    assert (req, prints) == (want, printed)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["ls"],
        ["spawn"],
        ["spawn", "relative/dir"],
        ["spawn", "."],
        ["spawn", "/p", "--task", "t"],  # a task: the worktree and its git work are click's
        ["spawn", "/p", "--help"],
        ["spawn", "/p", "-v"],
        ["-v", "spawn", "/p"],
        ["spawn", "/p", "--name=n"],
        ["spawn", "/p", "--name"],  # its value missing: click says so
        ["spawn", "/p", "--no-window", "--no-window"],
        ["spawn", "/p", "/q"],
        ["attach", "/p", "--no-window"],  # not attach's
        ["attach", "session-name"],  # a name, not a path: attach's own lookup
        ["run"],
    ],
)
def test_anything_else_is_the_full_commands(args: list[str]) -> None:
    assert quick_request(args, ENV) is None


def test_completion_and_an_environment_too_big_to_send_are_the_full_commands() -> None:
    assert quick_request(["spawn", "/p"], {**ENV, "_HAL_AGENT_COMPLETE": "bash_complete"}) is None
    assert quick_request(["spawn", "/p"], {**ENV, "BIG": "x" * MAX_BYTES}) is None


@pytest.fixture
def layout() -> Iterator[ParentLayout]:
    short = Path(f"/tmp/hq-{uuid.uuid4().hex[:8]}")  # unix socket paths are short
    short.mkdir()
    yield ParentLayout(run_dir=short, data_dir=short / "data", log_dir=short / "log")
    for p in sorted(short.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    short.rmdir()


def command_env(layout: ParentLayout) -> dict[str, str]:
    """`hal-agent`'s environment on `layout` (completion off, no colours)."""
    env = {**os.environ, **layout_env(layout), "NO_COLOR": "1"}
    env.pop("_HAL_AGENT_COMPLETE", None)
    return env


def hal_agent(layout: ParentLayout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parent_agent", *args],
        env=command_env(layout),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_loops_answer_is_what_the_command_prints_and_exits_with(
    layout: ParentLayout,
) -> None:
    loop = StandInLoop(layout.control_socket)
    loop.server.start()
    try:
        got: list[subprocess.CompletedProcess[str]] = []

        def run(*args: str) -> threading.Thread:
            t = threading.Thread(target=lambda: got.append(hal_agent(layout, *args)))
            t.start()
            return t

        t = run("spawn", "/srv/p", "--no-window")
        req = loop.answer_next(Answer(True, value="p-1234", notes=("a warning",)))
        t.join(30)
        assert isinstance(req, SpawnWorker) and req.directory == "/srv/p" and not req.window
        assert dict(req.env)["HAL_RUN_DIR"] == str(layout.run_dir)  # the command's environment
        assert (got[-1].returncode, got[-1].stdout, got[-1].stderr) == (
            0,
            "p-1234\n",
            "a warning\n",
        )
        # a refusal: its message as click would print it, its exit code
        t = run("spawn", "/srv/p", "--no-attach")
        loop.answer_next(Answer(False, "no such thing\n  hint: make it", code=2))
        t.join(30)
        assert got[-1].returncode == 2
        assert got[-1].stderr == "hal-agent: no such thing\n  hint: make it\n"
        # the loop says the command does it itself: the full command runs (here it finds
        # the directory missing, before any engine: its own refusal, exit 2)
        t = run("spawn", "/nonexistent/hq", "--no-window")
        loop.answer_next(Answer(False, "a project image to build", fallback=True))
        t.join(30)
        assert got[-1].returncode == 2, got[-1].stderr
        assert "/nonexistent/hq" in got[-1].stderr and "image to build" not in got[-1].stderr
    finally:
        loop.server.stop()


def test_no_loop_listening_is_the_full_command(layout: ParentLayout) -> None:
    res = hal_agent(layout, "spawn", "/nonexistent/hq", "--no-window")
    assert res.returncode == 2 and "/nonexistent/hq" in res.stderr, res.stderr
    assert "loop" not in res.stderr  # nothing of the quick path's attempt shows


def test_ctrl_c_while_the_loop_works_says_aborted_without_a_traceback(
    layout: ParentLayout,
) -> None:
    loop = StandInLoop(layout.control_socket)
    loop.server.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parent_agent", "spawn", "/srv/p", "--no-window"],
            env=command_env(layout),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        req, _reply = loop.inbox.get(timeout=30)  # taken; the loop is still at it
        assert isinstance(req, SpawnWorker)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out) == (1, "")
        assert err.strip() == "Aborted!", err
    finally:
        loop.server.stop()
