"""The notifier runs real commands: a shell script that records its env and stdin."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hal_common.config_schema import NotifyConfig
from parent_agent.adapters.notifier import Notifier
from parent_agent.core.agent_state import AgentState, clean

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def _recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A script that writes its environment and stdin, one file per run."""
    out = tmp_path / "runs"
    out.mkdir()
    script = tmp_path / "record.sh"
    script.write_text(
        f'#!/bin/sh\nd="{out}/$$"\nenv > "$d.env"\ncat > "$d.in"\nmv "$d.env" "$d.envdone"\n'
    )
    script.chmod(0o755)
    return script, out


def _runs(out: Path) -> list[tuple[dict[str, str], str]]:
    runs = []
    for done in sorted(out.glob("*.envdone")):
        env = dict(line.split("=", 1) for line in done.read_text().splitlines() if "=" in line)
        runs.append((env, done.with_suffix(".in").read_text()))
    return runs


@pytest.fixture
def errors() -> list[str]:
    return []


def _notifier(cfg: NotifyConfig, errors: list[str], **kw: float) -> Notifier:
    environ = {"PATH": os.environ["PATH"], "HOME": "/home/x", "LANG": "C.UTF-8", "SECRET": "s"}
    return Notifier(cfg, errors.append, environ=environ, **kw)  # type: ignore[arg-type]


def test_a_chosen_state_runs_the_command_with_env_and_a_json_line(
    tmp_path: Path, errors: list[str]
) -> None:
    script, out = _recorder(tmp_path)
    n = _notifier(NotifyConfig(command=(str(script),)), errors)
    try:
        state = AgentState("exited", WHEN, reason="claude exited", exit_code=137, oom=True)
        assert n.notify("w-demo", "/home/u/demo", state) is True
        assert _wait(lambda: len(_runs(out)) == 1)
    finally:
        n.close()
    env, line = _runs(out)[0]
    assert env["HAL_SESSION"] == "w-demo" and env["HAL_PROJECT"] == "/home/u/demo"
    assert (env["HAL_STATE"], env["HAL_REASON"], env["HAL_EXIT_CODE"]) == (
        "exited",
        "claude exited",
        "137",
    )
    assert env["HOME"] == "/home/x" and env["LANG"] == "C.UTF-8"
    assert "SECRET" not in env  # nothing else of the parent's environment
    doc = json.loads(line)
    assert line.endswith("\n") and line.count("\n") == 1
    assert doc == {
        "session": "w-demo",
        "project": "/home/u/demo",
        "state": "exited",
        "reason": "claude exited",
        "since": WHEN.timestamp(),
        "exit_code": 137,
        "oom": True,
    }
    assert errors == []


def test_states_not_chosen_and_an_empty_command_run_nothing(
    tmp_path: Path, errors: list[str]
) -> None:
    script, out = _recorder(tmp_path)
    n = _notifier(NotifyConfig(command=(str(script),), on=("waiting",)), errors)
    try:
        assert n.notify("w", "/p", AgentState("idle", WHEN)) is False
        assert n.notify("w", "/p", AgentState("working", WHEN)) is False
        n.configure(NotifyConfig(command=()))
        assert n.notify("w", "/p", AgentState("waiting", WHEN)) is False
        n.configure(NotifyConfig(command=(str(script),), on=("idle",)))  # live
        assert n.notify("w", "/p", AgentState("idle", WHEN)) is True
        assert _wait(lambda: len(_runs(out)) == 1)
        assert "HAL_EXIT_CODE" not in _runs(out)[0][0]
    finally:
        n.close()


def test_debounced_per_worker_and_state(tmp_path: Path, errors: list[str]) -> None:
    script, out = _recorder(tmp_path)
    n = _notifier(NotifyConfig(command=(str(script),), debounce=0.5), errors)
    waiting = AgentState("waiting", WHEN, reason="Claude needs your permission")
    try:
        assert n.notify("a", "/a", waiting) is True
        assert n.notify("a", "/a", waiting) is False  # same worker, same state: debounced
        assert n.notify("b", "/b", waiting) is True  # another worker
        assert n.notify("a", "/a", AgentState("exited", WHEN, exit_code=1)) is True
        time.sleep(0.6)
        assert n.notify("a", "/a", waiting) is True  # the debounce is over
        assert _wait(lambda: len(_runs(out)) == 4)
        n.configure(NotifyConfig(command=(str(script),), debounce=0.0))
        assert n.notify("a", "/a", waiting) is True
        assert n.notify("a", "/a", waiting) is True
    finally:
        n.close()


def test_hostile_reason_text_arrives_as_plain_data(tmp_path: Path, errors: list[str]) -> None:
    script, out = _recorder(tmp_path)
    canary = tmp_path / "pwned"
    hostile = (
        f'it\'s "quoted" $(touch {canary}) `touch {canary}` ; touch {canary} '
        "\x1b]0;title\x07\x1b[31mred\n$HOME"
    )
    reason = clean(hostile)
    n = _notifier(NotifyConfig(command=(str(script),)), errors)
    try:
        assert n.notify("w", "/p", AgentState("waiting", WHEN, reason=reason)) is True
        assert _wait(lambda: len(_runs(out)) == 1)
    finally:
        n.close()
    env, line = _runs(out)[0]
    assert env["HAL_REASON"] == reason
    assert json.loads(line)["reason"] == reason
    assert "\x1b" not in env["HAL_REASON"] and "$(touch" in env["HAL_REASON"]
    assert not canary.exists()


def test_a_slow_command_is_killed_and_the_caller_never_waits(
    tmp_path: Path, errors: list[str]
) -> None:
    pidfile = tmp_path / "pid"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nsleep 30 &\nwait\n")
    script.chmod(0o755)
    n = _notifier(NotifyConfig(command=(str(script),)), errors, timeout=0.5)
    try:
        started = time.monotonic()
        assert n.notify("w", "/p", AgentState("waiting", WHEN)) is True
        assert time.monotonic() - started < 0.2  # in the background
        assert _wait(lambda: bool(errors), timeout=5)
    finally:
        n.close()
    assert "ran longer than 0.5 s and was killed" in errors[0] and "w (waiting)" in errors[0]
    pid = int(pidfile.read_text())
    assert _wait(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), timeout=3)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def test_a_missing_or_failing_command_is_reported(tmp_path: Path, errors: list[str]) -> None:
    n = _notifier(NotifyConfig(command=(str(tmp_path / "nope"),)), errors)
    try:
        assert n.notify("w", "/p", AgentState("waiting", WHEN)) is True
        assert _wait(lambda: len(errors) == 1)
        assert "could not run: not found (check [notify] command)" in errors[0]
        assert str(tmp_path / "nope") in errors[0]
        failing = tmp_path / "fail.sh"
        failing.write_text("#!/bin/sh\necho 'no route to ntfy' >&2\nexit 3\n")
        failing.chmod(0o755)
        n.configure(NotifyConfig(command=(str(failing),)))
        assert n.notify("w2", "/p", AgentState("waiting", WHEN)) is True
        assert _wait(lambda: len(errors) == 2)
        assert "failed with exit code 3: no route to ntfy" in errors[1]
    finally:
        n.close()


def test_at_most_a_few_run_at_once(tmp_path: Path, errors: list[str]) -> None:
    script = tmp_path / "slow.sh"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    n = _notifier(NotifyConfig(command=(str(script),)), errors, max_running=2)
    try:
        assert n.notify("a", "/a", AgentState("waiting", WHEN)) is True
        assert n.notify("b", "/b", AgentState("waiting", WHEN)) is True
        assert n.notify("c", "/c", AgentState("waiting", WHEN)) is False
        assert "dropped" in errors[0] and "c (waiting)" in errors[0]
        # a dropped notification was not recorded: it may run once there is room
        started = time.monotonic()
    finally:
        n.close()
    assert time.monotonic() - started < 3  # close kills the running commands
    assert n.notify("d", "/d", AgentState("waiting", WHEN)) is False  # closed
