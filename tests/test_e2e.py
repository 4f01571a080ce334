"""End to end: real images, the real parent (Docker-in-Docker), real Claude Code, real tmux.

`claudy` runs as a user runs it (a subprocess, and inside a tmux pane for the interactive
attach); the screen is read with capture-pane.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import libtmux
import pytest
from docker.models.containers import Container
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_common.naming import container_name, session_name
from hal_io.engine import run_in

PARENT = ParentLayout()  # the paths inside the parent container

pytestmark = pytest.mark.e2e

INNER = ["docker", "-H", PARENT.inner_docker_host]
UID, GID = 1234, 1235
CLAUDE_SCREEN = ("Claude Code", "Welcome to Claude", "Choose the text style", "Let's get started")


@dataclass
class Env:
    dclient: docker.DockerClient
    env: dict[str, str]
    root: Path
    name: str

    def claudy(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "host_shim", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def claudy_argv(self, *args: str) -> str:
        exports = " ".join(
            f"{k}={v}" for k, v in self.env.items() if k.startswith(("HAL", "XDG", "DOCKER"))
        )
        return f"env {exports} {sys.executable} -m host_shim {' '.join(args)}"

    @property
    def parent(self) -> Container:
        return self.dclient.containers.get(self.name)

    def inner(self, *argv: str) -> str:
        code, out = run_in(self.parent, [*INNER, *argv])
        assert code == 0, out
        return out

    def inner_workers(self) -> list[dict[str, Any]]:
        out = self.inner("ps", "-a", "-q", "--filter", f"label={labels.ROLE}=worker")
        ids = out.split()
        return json.loads(self.inner("inspect", *ids)) if ids else []

    def parent_windows(self) -> set[str]:
        argv = ["tmux", "-S", str(PARENT.tmux_sock), "list-windows", "-t", "=hal", "-F", "#W"]
        try:
            code, out = run_in(self.parent, argv)
        except HalError:  # the parent is not running: no windows
            return set()
        return set(out.split()) if code == 0 else set()

    def logs(self) -> str:
        return str(self.parent.logs(tail=60).decode(errors="replace"))

    def project(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(exist_ok=True)
        os.chown(p, UID, GID)
        return p


@pytest.fixture(scope="module")
def env(
    docker_host: str, dclient: docker.DockerClient, built_images: dict[str, str]
) -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("the end-to-end tests chown project dirs and need root")
    base = Path(f"/tmp/hal-e2e-{uuid.uuid4().hex[:6]}")
    root, cfg = base / "projects", base / "config"
    (cfg / "hal9000").mkdir(parents=True)
    root.mkdir()
    name = f"hal9000-e2e-{uuid.uuid4().hex[:6]}"
    (cfg / "hal9000" / "config.toml").write_text(
        f'[parent]\nname = "{name}"\nroots = ["{root}"]\n\n[worker]\nmemory = "1g"\n'
    )
    e = dict(os.environ)
    e.update(DOCKER_HOST=docker_host, XDG_CONFIG_HOME=str(cfg), HAL9000_OFFLINE="1",
             HOME=str(base), TERM="xterm-256color")  # fmt: skip
    environment = Env(dclient, e, root, name)
    yield environment
    environment.claudy("down", "--volumes", "--yes", timeout=180)
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_first_claudy_starts_the_parent_and_a_labelled_worker(env: Env) -> None:
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
    assert w["HostConfig"]["NetworkMode"] == "host"
    # a file the agent writes in the project belongs to the project's user
    env.inner("exec", str(w["Id"]), "touch", f"{proj}/written-by-worker")
    st = (proj / "written-by-worker").stat()
    assert (st.st_uid, st.st_gid) == (UID, GID)
    assert session_name(str(proj)) in env.parent_windows()


def test_a_rerun_creates_nothing(env: Env) -> None:
    proj = env.project("alpha")
    assert env.claudy("-d", str(proj)).returncode == 0
    before = (env.parent.id, [w["Id"] for w in env.inner_workers()], env.parent_windows())
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    after = (env.parent.id, [w["Id"] for w in env.inner_workers()], env.parent_windows())
    assert before == after
    assert "loading" not in res.stderr  # the worker image was not moved again


def test_two_projects_give_two_windows(env: Env) -> None:
    a, b = env.project("alpha"), env.project("beta")
    assert env.claudy("-d", str(a)).returncode == 0
    assert env.claudy("-d", str(b)).returncode == 0
    windows = env.parent_windows()
    assert {session_name(str(a)), session_name(str(b))} <= windows


def test_concurrent_spawns_of_one_directory_give_one_worker(env: Env) -> None:
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
    named = [w for w in env.inner_workers()
             if w["Config"]["Labels"][labels.SESSION] == session_name(str(proj))]  # fmt: skip
    assert len(named) == 1
    assert sorted(env.parent_windows()).count(session_name(str(proj))) == 1


def _screen(pane: libtmux.Pane) -> str:
    return "\n".join(pane.capture_pane())


def _shows_claude(pane: libtmux.Pane) -> bool:
    return any(marker in _screen(pane) for marker in CLAUDE_SCREEN)


def _agent_pid(env: Env, proj: Path) -> str:
    return env.inner("exec", container_name(session_name(str(proj))), "hal-worker", "pid").strip()


def test_claudy_in_a_terminal_shows_claude_code(env: Env, server: libtmux.Server) -> None:
    proj = env.project("alpha")
    session = server.new_session("user", x=120, y=40, window_command=env.claudy_argv(str(proj)))
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: _shows_claude(pane), 60, raises=False), _screen(pane)


def test_the_agent_outlives_its_window_and_the_tmux_server(
    env: Env, server: libtmux.Server
) -> None:
    proj = env.project("alpha")
    assert env.claudy("-d", str(proj)).returncode == 0
    pid = _agent_pid(env, proj)
    name = session_name(str(proj))
    # close the worker's window: the agent keeps running in the worker
    env.parent.exec_run(["tmux", "-S", str(PARENT.tmux_sock), "kill-window", "-t", f"=hal:={name}"])
    assert name not in env.parent_windows()
    assert _agent_pid(env, proj) == pid
    # kill the parent's whole tmux server: still running
    env.parent.exec_run(["tmux", "-S", str(PARENT.tmux_sock), "kill-server"])
    assert _agent_pid(env, proj) == pid
    # the parent's loop brings tmux back, with a window for each running worker
    assert retry_until(lambda: name in env.parent_windows(), 15, raises=False), env.logs()
    # and reattaching from a terminal shows the same, live agent
    session = server.new_session("again", x=120, y=40, window_command=env.claudy_argv(str(proj)))
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: _shows_claude(pane), 60, raises=False), _screen(pane)
    assert _agent_pid(env, proj) == pid


def test_bad_directories_get_clear_errors_and_change_nothing(env: Env) -> None:
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


def test_missing_engine_is_a_clear_error(env: Env) -> None:
    e = dict(env.env, DOCKER_HOST="unix:///tmp/hal-no-engine.sock")
    argv = [sys.executable, "-m", "host_shim", "-d", str(env.project("alpha"))]
    res = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 3, res.stderr
    assert "does not answer" in res.stderr and "hint" in res.stderr


def test_status_lists_the_workers(env: Env) -> None:
    res = env.claudy("status", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["parent"]["state"] == "running"
    assert session_name(str(env.project("alpha"))) in {w["name"] for w in data["workers"]}


def test_doctor_reports_each_check(env: Env) -> None:
    res = env.claudy("doctor")
    assert res.returncode == 0, res.stderr
    for line in ("✓ config", "✓ engine", "✓ privileges", "inner engine up", "✓ images"):
        assert line in res.stderr, res.stderr
    broken = dict(env.env, DOCKER_HOST="unix:///tmp/hal-no-engine.sock")
    argv = [sys.executable, "-m", "host_shim", "doctor"]
    res = subprocess.run(argv, env=broken, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 1
    assert "✗ engine" in res.stderr and "fix:" in res.stderr


def test_stop_asks_then_shuts_down_in_order_and_claudy_brings_it_back(env: Env) -> None:
    proj = env.project("alpha")
    assert env.claudy("-d", str(proj)).returncode == 0
    refused = subprocess.run(
        [sys.executable, "-m", "host_shim", "stop"], env=env.env, input="n\n",
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
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
    assert [w["State"]["Status"] for w in env.inner_workers()
            if w["Config"]["Labels"][labels.PROJECT] == str(proj)] == ["running"]  # fmt: skip
