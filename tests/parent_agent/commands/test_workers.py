"""hal-agent's worker commands (spawn, ls, stop, start, restart, rm, logs, gc) against a real
engine and a real tmux server.

`hal-agent` runs as a subprocess, as a user types it, its paths pointed (HAL_* variables) at a
temporary ParentLayout: the test engine for the inner one, a private tmux server."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime

import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import session_name
from hal_testing.agent import AgentCommands
from hal_testing.schemas import validate
from parent_agent.adapters import snapshot_file
from parent_agent.core.agent_state import AgentState
from parent_agent.core.snapshot import Health, Snapshot

pytestmark = [pytest.mark.docker, pytest.mark.tmux]


def test_spawn_and_ls_json_schema(hal_agent: AgentCommands) -> None:
    proj = hal_agent.project("alpha")
    name = hal_agent.ok("spawn", str(proj), "--no-attach").strip()
    assert name == session_name(str(proj))
    assert name in hal_agent.windows()
    rows = json.loads(hal_agent.ok("ls", "--json"))
    validate("ls", rows)
    (row,) = [r for r in rows if r["name"] == name]
    assert set(row) == {
        "name",
        "project",
        "state",
        "image",
        "created",
        "uptime_s",
        "window",
        "limits",
        "agent",
        "claude",
        "task",
        "repo",
        "branch",
        "base",
        "ahead",
        "dirty",
    }
    # not in a git repository: no task, no repository
    assert {
        k: row[k] for k in ("task", "repo", "branch", "base", "ahead", "dirty")
    } == dict.fromkeys(("task", "repo", "branch", "base", "ahead", "dirty"))
    assert row["claude"] == {"version": "2.1.332", "outdated": False}  # the store's only one
    assert row["project"] == str(proj) and row["state"] == "running" and row["window"] is True
    assert row["image"] == "hal9000/worker:minimal" and isinstance(row["uptime_s"], int)
    assert row["created"].endswith("+00:00")
    assert row["limits"] == {"memory": 512 << 20, "cpus": 2.0, "pids": 1024}
    assert row["agent"] is None  # no loop has published a state: unknown, and ls still works
    table = hal_agent.ok("ls").splitlines()
    assert table[0].split() == ["NAME", "STATE", "WIN", "AGENT", "CLAUDE", "PROJECT"]
    assert any(line.split()[:4] == [name, "running", "win", "-"] for line in table[1:])
    # the loop's published state of the agent: in both
    since = datetime.now(UTC)
    state = AgentState("exited", since, "out of memory", exit_code=137, oom=True)
    snap = Snapshot(since, Health(True), agents={name: state})
    snapshot_file.publish(hal_agent.layout.status_file, snap)
    try:
        (row,) = [r for r in json.loads(hal_agent.ok("ls", "--json")) if r["name"] == name]
        assert row["agent"] == state.to_json()
        assert any(
            line.split()[:6] == [name, "running", "win", "exited", "137", "(OOM)"]
            for line in hal_agent.ok("ls").splitlines()
        )
        hal_agent.layout.status_file.write_text("{not a snapshot")
        (row,) = [r for r in json.loads(hal_agent.ok("ls", "--json")) if r["name"] == name]
        assert row["agent"] is None  # unreadable: unknown, and ls still works
    finally:
        hal_agent.layout.status_file.unlink(missing_ok=True)


def test_stop_start_restart_rm_and_ls_all(hal_agent: AgentCommands) -> None:
    proj = hal_agent.project("beta")
    name = hal_agent.ok("spawn", str(proj), "--no-attach").strip()
    assert retry_until(lambda: hal_agent.agent_pid(name) != "", 10)
    hal_agent.ok("stop", name)
    assert hal_agent.state(name) == "exited" and name not in hal_agent.windows()
    assert name not in hal_agent.ok("ls") and name in hal_agent.ok("ls", "--all")
    hal_agent.ok("start", str(proj))  # a project path names its worker too
    assert hal_agent.state(name) == "running" and name in hal_agent.windows()
    assert retry_until(lambda: hal_agent.agent_pid(name) != "", 10)
    before = hal_agent.agent_pid(name)
    hal_agent.ok("restart", name)
    assert retry_until(lambda: hal_agent.agent_pid(name) not in ("", before), 10)
    assert name in hal_agent.windows()
    res = hal_agent.run("rm", name)
    assert res.returncode == 2 and "is running" in res.stderr
    hal_agent.ok("rm", "--force", name)
    assert hal_agent.state(name) == "absent" and name not in hal_agent.windows()


def test_spawn_with_a_custom_name_and_image(hal_agent: AgentCommands) -> None:
    proj = hal_agent.project("gamma")
    assert (
        hal_agent.ok("spawn", str(proj), "--no-attach", "--name", "my-gamma").strip() == "my-gamma"
    )
    assert hal_agent.state("my-gamma") == "running"
    # the project's worker is found by its path, whatever its name
    assert hal_agent.ok("spawn", str(proj), "--no-attach").strip() == "my-gamma"
    res = hal_agent.run(
        "spawn", str(hal_agent.project("delta")), "--no-attach", "--name", "my-gamma"
    )
    assert res.returncode == 2 and "taken" in res.stderr
    res = hal_agent.run(
        "spawn", str(hal_agent.project("delta")), "--no-attach", "--name", "Bad:Name"
    )
    assert res.returncode == 2 and "bad session name" in res.stderr
    res = hal_agent.run(
        "spawn", str(hal_agent.project("delta")), "--no-attach", "--image", "none:0"
    )
    assert res.returncode == 10 and "no image none:0" in res.stderr
    hal_agent.ok("rm", "-f", "my-gamma")


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("attach", "nobody-00000000"), 5, "no worker named"),
        (("stop", "nobody"), 5, "no worker named"),
        (("logs", "nobody"), 5, "no worker named"),
        (("shell", "nobody"), 5, "no worker named"),
        (("spawn", "/nonexistent/dir", "--no-attach"), 2, "not under a configured root"),
        (("spawn", "~/.ssh", "--no-attach"), 2, "sensitive directory"),
        (("attach", "/etc"), 2, "system directory"),
        (("stop", "/etc"), 2, "system directory"),
        (("gc", "--older-than", "soon"), 2, "not a duration"),
        (("stop",), 2, "Missing argument"),
    ],
)
def test_error_paths_have_documented_exit_codes(
    hal_agent: AgentCommands, args: tuple[str, ...], code: int, needle: str
) -> None:
    res = hal_agent.run(*args)
    assert res.returncode == code, res.stderr
    assert needle in res.stderr


def test_engine_unavailable_exits_3(hal_agent: AgentCommands) -> None:
    res = hal_agent.run("ls", HAL_INNER_DOCKER_HOST="unix:///tmp/hal-none.sock")
    assert res.returncode == 3 and "does not answer" in res.stderr


def test_gc_removes_stopped_and_orphans_never_unlabelled(hal_agent: AgentCommands) -> None:
    keep = hal_agent.project("keeper")
    keep_name = hal_agent.ok("spawn", str(keep), "--no-attach").strip()
    gone = hal_agent.project("orphan")
    gone_name = hal_agent.ok("spawn", str(gone), "--no-attach").strip()
    hal_agent.ok("stop", gone_name)
    shutil.rmtree(gone)
    idle_name = hal_agent.ok("spawn", str(hal_agent.project("idle")), "--no-attach").strip()
    hal_agent.ok("stop", idle_name)
    stranger = hal_agent.dclient.containers.create(
        "hal9000/worker:minimal", ["true"], name=f"stranger-{uuid.uuid4().hex[:6]}"
    )
    try:
        dry = hal_agent.ok("gc", "--dry-run")
        assert f"would remove {gone_name} (orphan" in dry and f"would remove {idle_name}" in dry
        assert hal_agent.state(gone_name) == "exited" and hal_agent.state(idle_name) == "exited"
        out = hal_agent.ok("gc", "--older-than", "1d")  # orphans go whatever their age
        assert f"removed {gone_name}" in out and idle_name not in out
        assert hal_agent.state(gone_name) == "absent" and hal_agent.state(idle_name) == "exited"
        out = hal_agent.ok("gc")
        assert f"removed {idle_name}" in out and keep_name not in out
        assert hal_agent.state(idle_name) == "absent" and hal_agent.state(keep_name) == "running"
        stranger.reload()
        assert stranger.status == "created"  # unlabelled: never touched
    finally:
        stranger.remove(force=True)
