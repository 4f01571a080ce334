"""hal-agent's manners, run as a process with no engine: a mistyped command, its name under
`python -m`, `completion`, worker names from the loop's snapshot, NO_COLOR on a terminal, -v."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hal_common.layout import ParentLayout
from parent_agent.adapters import snapshot_file
from parent_agent.core.model import Worker
from parent_agent.core.snapshot import Health, Snapshot

ESC = b"\x1b["


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NO_COLOR", "_HAL"))}
    env.update(
        HAL_RUN_DIR=str(tmp_path / "run"),
        HAL_LOG_DIR=str(tmp_path / "log"),
        HAL_INNER_DOCKER_HOST="unix:///nonexistent/inner.sock",
        HAL9000_CONFIG=str(tmp_path / "config.toml"),
    )
    env.update(extra)
    return env


def hal_agent(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parent_agent", *args],
        env=env_for(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_mistyped_command_is_named_with_the_nearest_visible_one(tmp_path: Path) -> None:
    res = hal_agent(tmp_path, "lss")
    assert res.returncode == 2
    assert "No such command 'lss'. Did you mean 'ls'?" in res.stderr
    hidden = hal_agent(tmp_path, "redy")  # `ready` is hidden: never suggested
    assert hidden.returncode == 2 and "No such command 'redy'." in hidden.stderr
    assert "ready" not in hidden.stderr


def test_help_says_hal_agent_under_python_dash_m(tmp_path: Path) -> None:
    res = hal_agent(tmp_path, "--help")
    assert res.returncode == 0 and res.stdout.startswith("Usage: hal-agent [OPTIONS]")
    assert "--no-color" in res.stdout and "--quiet" in res.stdout
    assert "Usage: hal-agent logs" in hal_agent(tmp_path, "logs", "--help").stdout


def test_completion_prints_clicks_script_for_each_shell(tmp_path: Path) -> None:
    bash = hal_agent(tmp_path, "completion", "bash").stdout
    made = hal_agent(tmp_path, _HAL_AGENT_COMPLETE="bash_source").stdout
    # click 8.1 ends its own with a newline more; the script is the same
    assert bash.rstrip("\n") == made.rstrip("\n") and "_HAL_AGENT_COMPLETE=bash_complete" in bash
    assert "compdef hal-agent" in hal_agent(tmp_path, "completion", "zsh").stdout
    assert (
        "complete --no-files --command hal-agent"
        in hal_agent(tmp_path, "completion", "fish").stdout
    )
    bad = hal_agent(tmp_path, "completion", "tcsh")
    assert bad.returncode == 2 and "'bash', 'zsh', 'fish'" in bad.stderr


def complete(tmp_path: Path, line: str) -> list[str]:
    res = hal_agent(
        tmp_path,
        _HAL_AGENT_COMPLETE="bash_complete",
        COMP_WORDS=line,
        COMP_CWORD=str(len(line.split(" ")) - 1),
    )
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if line]


def test_worker_names_complete_from_the_loops_snapshot(tmp_path: Path) -> None:
    assert complete(tmp_path, "hal-agent logs ") == []  # no snapshot, no engine: nothing
    now = datetime.now(UTC)
    workers = tuple(
        Worker(name, f"hal9000-w-{name}", f"/home/u/{name}", "img", state, now, now)
        for name, state in (("api-1a2b3c4d", "running"), ("web-5e6f7a8b", "exited"))
    )
    layout = ParentLayout.from_env(env_for(tmp_path))
    snapshot_file.publish(layout.status_file, Snapshot(now, Health(engine_ok=True), workers))
    assert complete(tmp_path, "hal-agent logs ") == ["plain,api-1a2b3c4d", "plain,web-5e6f7a8b"]
    assert complete(tmp_path, "hal-agent stop w") == ["plain,web-5e6f7a8b"]
    assert complete(tmp_path, "hal-agent attach ./") == ["dir,./"]
    assert "plain,--follow" in complete(tmp_path, "hal-agent logs api-1a2b3c4d -")
    assert {"plain,ls", "plain,logs"} <= set(complete(tmp_path, "hal-agent l"))


def on_a_terminal(tmp_path: Path, *args: str, **extra: str) -> bytes:
    """hal-agent's stderr when it is a terminal (a pty): where click colours."""
    leader, follower = os.openpty()
    try:
        subprocess.run(
            [sys.executable, "-m", "parent_agent", *args],
            env=env_for(tmp_path, **extra),
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            timeout=60,
            check=False,
        )
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        os.close(leader)


def test_no_color_and_dash_dash_no_color_on_a_terminal(tmp_path: Path) -> None:
    coloured = on_a_terminal(tmp_path, "ls")
    assert b"does not answer" in coloured and ESC in coloured
    for out in (
        on_a_terminal(tmp_path, "ls", NO_COLOR="1"),
        on_a_terminal(tmp_path, "--no-color", "ls"),
    ):
        assert b"does not answer" in out and ESC not in out, out


def test_verbose_shows_debug_lines_and_quiet_none(tmp_path: Path) -> None:
    res = hal_agent(tmp_path, "-v", "ls")
    assert res.returncode == 3 and "DEBUG " in res.stderr
    assert "DEBUG " not in hal_agent(tmp_path, "ls").stderr
    assert "DEBUG " not in hal_agent(tmp_path, "-q", "ls").stderr
