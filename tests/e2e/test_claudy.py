"""End to end: real images, the real parent (Docker-in-Docker), real Claude Code, real tmux.

`claudy` runs as a user runs it (a subprocess, and inside a tmux pane for the interactive
attach); the screen is read with capture-pane.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.egress import WORKER_NETWORK
from hal_common.naming import container_name, session_name
from hal_testing.engine import GID, UID
from hal_testing.host import HostParent
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

CLAUDE_SCREEN = ("Claude Code", "Welcome to Claude", "Choose the text style", "Let's get started")


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    """One parent for the module: workers of 1g, the built-in services on."""
    return host_parents("e2e")


def test_first_claudy_starts_the_parent_and_a_labelled_worker(env: HostParent) -> None:
    proj = env.project("alpha")
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    assert res.stdout.strip() == session_name(str(proj))
    parent = env.parent
    assert parent.labels[labels.ROLE] == labels.ROLE_PARENT
    assert parent.attrs["HostConfig"]["Privileged"] is False
    (w,) = env.inner_workers()
    lab = w["Config"]["Labels"]
    assert lab[labels.SESSION] == session_name(str(proj))
    assert lab[labels.PROJECT] == str(proj) and lab[labels.MANAGED] == "true"
    assert w["Name"] == "/" + container_name(session_name(str(proj)))
    mounts = {m["Destination"]: m["Source"] for m in w["Mounts"]}
    assert mounts[str(proj)] == str(proj)  # the same absolute path as on the host
    assert w["Config"]["User"] == f"{UID}:{GID}"
    assert w["Config"]["WorkingDir"] == str(proj)
    assert w["HostConfig"]["NetworkMode"] == WORKER_NETWORK
    # a file the agent writes in the project belongs to the project's user
    env.inner("exec", str(w["Id"]), "touch", f"{proj}/written-by-worker")
    st = (proj / "written-by-worker").stat()
    assert (st.st_uid, st.st_gid) == (UID, GID)
    assert session_name(str(proj)) in env.windows()


def test_a_rerun_creates_nothing(env: HostParent) -> None:
    proj = env.project("alpha")
    assert env.claudy("-d", str(proj)).returncode == 0
    before = (env.parent.id, [w["Id"] for w in env.inner_workers()], env.windows())
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    after = (env.parent.id, [w["Id"] for w in env.inner_workers()], env.windows())
    assert before == after
    assert "loading" not in res.stderr  # the worker image was not moved again


def test_two_projects_give_two_windows(env: HostParent) -> None:
    a, b = env.project("alpha"), env.project("beta")
    assert env.claudy("-d", str(a)).returncode == 0
    assert env.claudy("-d", str(b)).returncode == 0
    windows = env.windows()
    assert {session_name(str(a)), session_name(str(b))} <= windows


def test_concurrent_spawns_of_one_directory_give_one_worker(env: HostParent) -> None:
    proj = env.project("gamma")
    results: list[int] = []

    def spawn() -> None:
        r = env.parent.exec_run(["hal-agent", "spawn", str(proj), "--no-attach"])
        results.append(int(r.exit_code or 0))

    threads = [threading.Thread(target=spawn) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [0, 0, 0]
    named = [
        w
        for w in env.inner_workers()
        if w["Config"]["Labels"][labels.SESSION] == session_name(str(proj))
    ]
    assert len(named) == 1
    assert sorted(env.windows()).count(session_name(str(proj))) == 1


def _screen(pane: libtmux.Pane) -> str:
    return "\n".join(pane.capture_pane())


def _shows_claude(pane: libtmux.Pane) -> bool:
    return any(marker in _screen(pane) for marker in CLAUDE_SCREEN)


def _agent_pid(env: HostParent, proj: Path) -> str:
    return env.inner("exec", container_name(session_name(str(proj))), "hal-worker", "pid").strip()


def test_claudy_in_a_terminal_shows_claude_code(env: HostParent, server: libtmux.Server) -> None:
    proj = env.project("alpha")
    session = server.new_session("user", x=120, y=40, window_command=env.claudy_argv(str(proj)))
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: _shows_claude(pane), 60, raises=False), _screen(pane)


def test_the_agent_outlives_its_window_and_the_tmux_server(
    env: HostParent, server: libtmux.Server
) -> None:
    proj = env.project("alpha")
    assert env.claudy("-d", str(proj)).returncode == 0
    pid = _agent_pid(env, proj)
    name = session_name(str(proj))
    # close the worker's window: the agent keeps running in the worker
    env.tmux("kill-window", "-t", f"=hal:={name}")
    assert name not in env.windows()
    assert _agent_pid(env, proj) == pid
    # kill the parent's whole tmux server: still running
    env.tmux("kill-server")
    assert _agent_pid(env, proj) == pid
    # the parent's loop brings tmux back, with a window for each running worker
    assert retry_until(lambda: name in env.windows(), 15, raises=False), env.logs()
    # and reattaching from a terminal shows the same, live agent
    session = server.new_session("again", x=120, y=40, window_command=env.claudy_argv(str(proj)))
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: _shows_claude(pane), 60, raises=False), _screen(pane)
    assert _agent_pid(env, proj) == pid


def test_bad_directories_get_clear_errors_and_change_nothing(env: HostParent) -> None:
    before = [w["Id"] for w in env.inner_workers()]
    for arg, needle in [
        (str(env.root / "nope"), "no such directory"),
        ("/etc", "system directory"),
        (str(env.root), "is a root itself"),
        ("/var/tmp", "not under a configured root"),
    ]:
        res = env.claudy("-d", arg)
        assert res.returncode == 2, (arg, res.stderr)
        assert needle in res.stderr, res.stderr
    assert [w["Id"] for w in env.inner_workers()] == before


def test_missing_engine_is_a_clear_error(env: HostParent) -> None:
    proj = str(env.project("alpha"))
    res = env.claudy("-d", proj, timeout=60, DOCKER_HOST="unix:///tmp/hal-no-engine.sock")
    assert res.returncode == 3, res.stderr
    assert "does not answer" in res.stderr and "hint" in res.stderr


def test_status_lists_the_workers(env: HostParent) -> None:
    res = env.claudy("status", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    validate("claudy-status", data)
    assert data["parent"]["state"] == "running"
    assert session_name(str(env.project("alpha"))) in {w["name"] for w in data["workers"]}


def test_doctor_reports_each_check(env: HostParent) -> None:
    # the services image is loaded in the background: the services answer some time after
    # the first claudy (a service still starting is a doctor's ✗)
    def services_up() -> bool:
        found = env.services() or []
        return bool(found) and all(s["ok"] or s["state"] == "disabled" for s in found)

    assert retry_until(services_up, 300, raises=False), env.sh("hal-agent services")
    res = env.claudy("doctor")
    assert res.returncode == 0, res.stderr
    for line in ("✓ config", "✓ engine", "✓ privileges", "inner engine up", "✓ images"):
        assert line in res.stderr, res.stderr
    res = env.claudy("doctor", timeout=60, DOCKER_HOST="unix:///tmp/hal-no-engine.sock")
    assert res.returncode == 1
    assert "✗ engine" in res.stderr and "fix:" in res.stderr


def test_stop_asks_then_shuts_down_in_order_and_claudy_brings_it_back(env: HostParent) -> None:
    proj = env.project("alpha")
    assert env.claudy("-d", str(proj)).returncode == 0
    refused = env.claudy("stop", input="n\n", timeout=60)
    assert refused.returncode == 1 and "Stop them all?" in refused.stdout
    assert env.parent.status == "running"
    res = env.claudy("stop", "--yes")
    assert res.returncode == 0, res.stderr
    assert env.parent.status == "exited"
    log = env.parent.logs().decode()
    order = [log.rfind(m) for m in ("stopped worker", "dockerd stopped", "parent stopped")]
    assert -1 not in order and order == sorted(order), log[-2000:]
    # the next claudy starts the parent again; the worker image is still inside (a volume)
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    assert "loading" not in res.stderr
    assert [
        w["State"]["Status"]
        for w in env.inner_workers()
        if w["Config"]["Labels"][labels.PROJECT] == str(proj)
    ] == ["running"]
