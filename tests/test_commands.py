"""hal-agent's commands and prefix keys against a real engine and a real tmux server.

hal-agent runs as a subprocess, as a user types it, with its paths pointed (HAL_* variables)
at the test engine and a private tmux socket instead of the parent's own. Keys are pressed
with send-keys into a pane that runs a real tmux client of that server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.naming import container_name, session_name
from parent_agent.adapters import workers
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.tmux import TmuxUI
from parent_agent.core.keys import bindings

pytestmark = [pytest.mark.docker, pytest.mark.tmux]
UID, GID = 1234, 1235


@dataclass
class Agent:
    env: dict[str, str]
    root: Path
    sock: Path
    dclient: docker.DockerClient
    view: str = ""  # the session of the test's tmux client

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "parent_agent", *args], env={**self.env, **env},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def ok(self, *args: str) -> str:
        res = self.run(*args)
        assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res.stdout

    def project(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(exist_ok=True)
        os.chown(p, UID, GID)
        return p

    def tmux(self, *args: str) -> list[str]:
        out = subprocess.run(["tmux", "-S", str(self.sock), *args], capture_output=True,
                             text=True, check=False).stdout  # fmt: skip
        return out.splitlines()

    def windows(self) -> set[str]:
        return {w for w in self.tmux("list-windows", "-t", "=hal", "-F", "#{@hal-session}") if w}

    def state(self, name: str) -> str:
        found = self.dclient.containers.list(all=True, filters=labels.managed_filter(session=name))
        return found[0].status if found else "absent"

    def agent_pid(self, name: str) -> str:
        """The agent's identity: its pid inside the worker plus the worker's start time
        (pids repeat in a restarted container's fresh pid namespace)."""
        c = self.dclient.containers.get(container_name(name))
        pid = workers.agent_pid(InnerEngine(self.dclient), c.name or "")  # None unless running
        return f"{pid}@{c.attrs['State']['StartedAt']}" if pid is not None else ""


@pytest.fixture(scope="module")
def agent(docker_host: str, dclient: docker.DockerClient, built_images: dict[str, str]
          ) -> Iterator[Agent]:  # fmt: skip
    if os.geteuid() != 0:
        pytest.skip("needs root (project dirs are chowned to a test uid)")
    base = Path(f"/tmp/hc-{uuid.uuid4().hex[:6]}")
    run, root = base / "run", base / "p"
    for d in (run, root, base / "log"):
        d.mkdir(parents=True)
    cfg = base / "config.toml"
    # the built-in services are the end-to-end tests' (they listen on the parent's localhost)
    no_builtin = "".join(f"\n[services.{n}]\nenabled = false\n"
                         for n in ("chromadb", "chroma-mcp", "memory-bank"))  # fmt: skip
    cfg.write_text('[worker]\nmemory = "512m"\n\n[dashboard]\nrefresh = 0.5\n' + no_builtin)
    env = {
        **os.environ,
        "HAL_RUN_DIR": str(run), "HAL_TMUX_SOCKET": str(run / "tmux.sock"),
        "HAL_INNER_DOCKER_HOST": docker_host, "HAL_CLAUDE_HOME": str(base / "claude"),
        "HAL_LOG_DIR": str(base / "log"), "HAL9000_CONFIG": str(cfg),
        "HAL_DATA_DIR": str(base / "data"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "SHELL": "/bin/sh",
    }  # fmt: skip
    env.pop("TMUX", None)
    a = Agent(env, root, run / "tmux.sock", dclient)
    # what `hal-agent run` does for tmux, in a server that inherits the test environment
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        ui = TmuxUI(libtmux.Server(socket_path=str(a.sock)))
        ui.ensure_session()
        ui.apply_keys("C-b", bindings({}))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield a
    for c in dclient.containers.list(all=True, filters=labels.managed_filter(labels.ROLE_WORKER)):
        if str(c.labels.get(labels.PROJECT, "")).startswith(str(root)):
            c.remove(force=True)
    a.tmux("kill-server")
    shutil.rmtree(base, ignore_errors=True)


def test_spawn_and_ls_json_schema(agent: Agent) -> None:
    proj = agent.project("alpha")
    name = agent.ok("spawn", str(proj), "--no-attach").strip()
    assert name == session_name(str(proj))
    assert name in agent.windows()
    rows = json.loads(agent.ok("ls", "--json"))
    (row,) = [r for r in rows if r["name"] == name]
    assert set(row) == {"name", "project", "state", "image", "created", "uptime_s", "window",
                        "limits"}  # fmt: skip
    assert row["project"] == str(proj) and row["state"] == "running" and row["window"] is True
    assert row["image"] == "hal9000/worker:minimal" and isinstance(row["uptime_s"], int)
    assert row["created"].endswith("+00:00")
    assert row["limits"] == {"memory": 512 << 20, "cpus": 2.0, "pids": 1024}
    assert name in agent.ok("ls")


def test_stop_start_restart_rm_and_ls_all(agent: Agent) -> None:
    proj = agent.project("beta")
    name = agent.ok("spawn", str(proj), "--no-attach").strip()
    assert retry_until(lambda: agent.agent_pid(name) != "", 10)
    agent.ok("stop", name)
    assert agent.state(name) == "exited" and name not in agent.windows()
    assert name not in agent.ok("ls") and name in agent.ok("ls", "--all")
    agent.ok("start", str(proj))  # a project path names its worker too
    assert agent.state(name) == "running" and name in agent.windows()
    assert retry_until(lambda: agent.agent_pid(name) != "", 10)
    before = agent.agent_pid(name)
    agent.ok("restart", name)
    assert retry_until(lambda: agent.agent_pid(name) not in ("", before), 10)
    assert name in agent.windows()
    res = agent.run("rm", name)
    assert res.returncode == 2 and "is running" in res.stderr
    agent.ok("rm", "--force", name)
    assert agent.state(name) == "absent" and name not in agent.windows()


def test_spawn_with_a_custom_name_and_image(agent: Agent) -> None:
    proj = agent.project("gamma")
    assert agent.ok("spawn", str(proj), "--no-attach", "--name", "my-gamma").strip() == "my-gamma"
    assert agent.state("my-gamma") == "running"
    # the project's worker is found by its path, whatever its name
    assert agent.ok("spawn", str(proj), "--no-attach").strip() == "my-gamma"
    res = agent.run("spawn", str(agent.project("delta")), "--no-attach", "--name", "my-gamma")
    assert res.returncode == 2 and "taken" in res.stderr
    res = agent.run("spawn", str(agent.project("delta")), "--no-attach", "--name", "Bad:Name")
    assert res.returncode == 2 and "bad session name" in res.stderr
    res = agent.run("spawn", str(agent.project("delta")), "--no-attach", "--image", "none:0")
    assert res.returncode == 10 and "no image none:0" in res.stderr
    agent.ok("rm", "-f", "my-gamma")


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("attach", "nobody-00000000"), 5, "no worker named"),
        (("stop", "nobody"), 5, "no worker named"),
        (("logs", "nobody"), 5, "no worker named"),
        (("shell", "nobody"), 5, "no worker named"),
        (("spawn", "/nonexistent/dir", "--no-attach"), 2, "not a directory"),
        (("gc", "--older-than", "soon"), 2, "not a duration"),
        (("stop",), 2, "Missing argument"),
    ],
)
def test_error_paths_have_documented_exit_codes(
    agent: Agent, args: tuple[str, ...], code: int, needle: str
) -> None:
    res = agent.run(*args)
    assert res.returncode == code, res.stderr
    assert needle in res.stderr


def test_engine_unavailable_exits_3(agent: Agent) -> None:
    res = agent.run("ls", HAL_INNER_DOCKER_HOST="unix:///tmp/hal-none.sock")
    assert res.returncode == 3 and "does not answer" in res.stderr


def test_logs_and_stats(agent: Agent) -> None:
    proj = agent.project("epsilon")
    name = agent.ok("spawn", str(proj), "--no-attach").strip()
    assert agent.run("logs", name, "--tail", "5").returncode == 0
    assert agent.run("logs", name, "--tail", "x").returncode == 2
    data = json.loads(agent.ok("stats", "--json", "--interval", "0.2"))
    u = data[name]
    assert set(u) == {"cpu_pct", "mem_used", "mem_limit", "pids", "net_rx", "net_tx",
                      "blk_read", "blk_write"}  # fmt: skip
    assert u["mem_limit"] == 512 << 20 and 0 < u["mem_used"] < u["mem_limit"]
    assert u["pids"] >= 2 and u["cpu_pct"] is not None
    table = agent.ok("stats", "--no-stream", "--interval", "0.2")
    assert name in table and "mem used/limit" in table


def test_gc_removes_stopped_and_orphans_never_unlabelled(agent: Agent) -> None:
    keep = agent.project("keeper")
    keep_name = agent.ok("spawn", str(keep), "--no-attach").strip()
    gone = agent.project("orphan")
    gone_name = agent.ok("spawn", str(gone), "--no-attach").strip()
    agent.ok("stop", gone_name)
    shutil.rmtree(gone)
    idle_name = agent.ok("spawn", str(agent.project("idle")), "--no-attach").strip()
    agent.ok("stop", idle_name)
    stranger = agent.dclient.containers.create("hal9000/worker:minimal", ["true"],
                                               name=f"stranger-{uuid.uuid4().hex[:6]}")  # fmt: skip
    try:
        dry = agent.ok("gc", "--dry-run")
        assert f"would remove {gone_name} (orphan" in dry and f"would remove {idle_name}" in dry
        assert agent.state(gone_name) == "exited" and agent.state(idle_name) == "exited"
        out = agent.ok("gc", "--older-than", "1d")  # orphans go whatever their age
        assert f"removed {gone_name}" in out and idle_name not in out
        assert agent.state(gone_name) == "absent" and agent.state(idle_name) == "exited"
        out = agent.ok("gc")
        assert f"removed {idle_name}" in out and keep_name not in out
        assert agent.state(idle_name) == "absent" and agent.state(keep_name) == "running"
        stranger.reload()
        assert stranger.status == "created"  # unlabelled: never touched
    finally:
        stranger.remove(force=True)


def test_keys_version_and_doctor(agent: Agent) -> None:
    data = json.loads(agent.ok("keys", "--json"))
    assert data["prefix"] == "C-b"
    assert {b["action"] for b in data["bindings"]} >= {"stop", "restart", "shell", "choose"}
    bound = "\n".join(agent.tmux("list-keys", "-T", "prefix"))
    for b in data["bindings"]:
        assert f" {b['key']} " in bound, b
    assert "hal-9000" in agent.ok("version")
    res = agent.run("doctor")
    assert "✓ inner engine" in res.stdout and "✓ tmux" in res.stdout


# ---- prefix keys, pressed in a real tmux client ---------------------------------------------


@pytest.fixture
def client(agent: Agent, server: libtmux.Server) -> Iterator[libtmux.Pane]:
    """A pane of another tmux server running a client attached to the hal session."""
    agent.view = f"kc{uuid.uuid4().hex[:6]}"
    attach = (f"env -u TMUX tmux -S {agent.sock} new-session -t =hal -s {agent.view}"
              " \\; set-option destroy-unattached on")  # fmt: skip
    session = server.new_session("keys", x=100, y=30, window_command=attach)
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: bool(agent.tmux("list-clients")), 10)
    yield pane


def _client_window(agent: Agent) -> str:
    out = agent.tmux("list-clients", "-F", "#{window_name}")
    return out[0] if out else ""


def _press(pane: libtmux.Pane, key: str) -> None:
    pane.send_keys("C-b", enter=False, suppress_history=False)
    pane.send_keys(key, enter=False, suppress_history=False)


def _screen(pane: libtmux.Pane) -> str:
    return "\n".join(pane.capture_pane())


def test_keys_choose_shell_dashboard_stop_restart(agent: Agent, client: libtmux.Pane) -> None:
    proj = agent.project("keys")
    name = agent.ok("spawn", str(proj), "--no-attach").strip()
    # choose: a menu of workers; its first entry is picked with its digit
    _press(client, "W")
    assert retry_until(lambda: "workers" in _screen(client), 10), _screen(client)
    names = sorted(w for w in agent.windows())
    client.send_keys(str(names.index(name) + 1), enter=False)
    assert retry_until(lambda: _client_window(agent) == name, 10)
    # dashboard
    _press(client, "D")
    assert retry_until(lambda: _client_window(agent) == "dashboard", 5)
    agent.tmux("select-window", "-t", f"={agent.view}:={name}")
    # shell: a new window with a shell inside the worker
    _press(client, "S")
    assert retry_until(lambda: _client_window(agent) == f"{name}/sh", 10)
    client.send_keys("id -u", enter=True)
    assert retry_until(lambda: str(UID) in _screen(client), 10), _screen(client)
    client.send_keys("exit", enter=True)
    assert retry_until(lambda: _client_window(agent) != f"{name}/sh", 10)
    agent.tmux("select-window", "-t", f"={agent.view}:={name}")
    # restart: a new agent process
    assert retry_until(lambda: agent.agent_pid(name) != "", 10)
    before = agent.agent_pid(name)
    _press(client, "R")
    assert retry_until(lambda: agent.agent_pid(name) not in ("", before), 15)
    assert retry_until(lambda: name in agent.windows(), 10)
    agent.tmux("select-window", "-t", f"={agent.view}:={name}")
    # stop: asks first; 'n' keeps it, 'y' stops it
    _press(client, "X")
    assert retry_until(lambda: f"stop worker {name}?" in _screen(client), 10), _screen(client)
    client.send_keys("n", enter=False)
    assert agent.state(name) == "running"
    _press(client, "X")
    assert retry_until(lambda: f"stop worker {name}?" in _screen(client), 10)
    client.send_keys("y", enter=False)
    assert retry_until(lambda: agent.state(name) == "exited", 20)
    assert retry_until(lambda: name not in agent.windows(), 10)


def test_keys_new_session_and_stats_popup(agent: Agent, client: libtmux.Pane) -> None:
    proj = agent.project("fresh")
    _press(client, "N")
    assert retry_until(lambda: "another directory" in _screen(client), 10), _screen(client)
    client.send_keys("o", enter=False)
    assert retry_until(lambda: "project directory:" in _screen(client), 10)
    client.send_keys(str(proj), enter=True)
    name = session_name(str(proj))
    assert retry_until(lambda: _client_window(agent) == name, 20), _screen(client)
    assert agent.state(name) == "running"
    _press(client, "T")
    assert retry_until(lambda: "worker stats" in _screen(client), 10), _screen(client)
    assert retry_until(lambda: name in _screen(client), 10), _screen(client)
    client.send_keys("C-c", enter=False)
    assert retry_until(lambda: "worker stats" not in _screen(client), 10)


def test_dashboard_pane_shows_the_workers(agent: Agent) -> None:
    proj = agent.project("dash")
    name = agent.ok("spawn", str(proj), "--no-attach").strip()

    def screen() -> str:
        return "\n".join(agent.tmux("capture-pane", "-p", "-S", "-", "-t", "=hal:=dashboard.0"))

    ok = retry_until(lambda: name in screen() and "engine up" in screen(), 20, raises=False)
    assert ok, screen()
    status = agent.tmux("show-options", "-gqv", "@hal-status")
    assert status == [] or "running" in status[0]
