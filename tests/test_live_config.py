"""The agent loop applying saved configs: real watcher, real engine, real tmux."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.config import load_config
from hal_common.layout import ParentLayout
from parent_agent.adapters import snapshot_file
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.tmux import TmuxUI
from parent_agent.app import sessions
from parent_agent.app.agent import Agent
from parent_agent.app.events import Shutdown
from parent_agent.core.snapshot import Snapshot

pytestmark = [pytest.mark.docker, pytest.mark.tmux]


class EngineSeam:
    """Stands in for our own Dockerd supervisor (a seam of ours, not docker-py): the test
    engine plays the inner engine, so the loop runs without Docker-in-Docker."""

    def __init__(self, docker_host: str) -> None:
        self.host = docker_host
        self.stopped = threading.Event()

    def start(self) -> InnerEngine:
        return InnerEngine(docker.DockerClient(base_url=self.host))

    def wait(self) -> int:
        self.stopped.wait()
        return 0

    def stop(self) -> None:
        self.stopped.set()


def published(agent: Agent) -> Snapshot:
    """What the loop last published (the dashboard and `health` read the same file)."""
    snap = snapshot_file.read(agent.layout.status_file)
    assert snap is not None
    return snap


def save(path: Path, text: str) -> float:
    """Save like an editor that renames over the file; returns the time of the save."""
    tmp = path.with_name(".config.toml.swp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return time.monotonic()


# the built-in services are the end-to-end tests' (they listen on the parent's localhost)
NO_BUILTIN = "".join(f"\n[services.{n}]\nenabled = false\n" for n in ("chromadb", "chroma-mcp",
                                                                     "memory-bank"))  # fmt: skip
BASE = '[worker]\nmemory = "512m"\ncpus = 1.0\n\n[keys]\nstats = "T"\n' + NO_BUILTIN


@pytest.fixture
def running(
    tmp_path: Path, docker_host: str, dclient: docker.DockerClient, built_images: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Agent, Path, docker.DockerClient]]:  # fmt: skip
    short = Path(f"/tmp/hl-{os.getpid()}-{tmp_path.name[-6:]}")
    short.mkdir()
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(BASE)
    ui = TmuxUI(libtmux.Server(socket_path=str(short / "t.sock")))
    layout = ParentLayout(run_dir=short, log_dir=short / "log", claude_home=short / "claude",
                          data_dir=short / "data", tmux_socket=short / "t.sock",
                          config_override=cfg_path)  # fmt: skip
    agent = Agent(load_config(cfg_path), layout, dockerd=EngineSeam(docker_host), ui=ui)  # type: ignore[arg-type]
    threads_before = set(threading.enumerate())
    loop = threading.Thread(target=agent.run, name="agent-loop")
    monkeypatch.setattr(agent, "install_signals", lambda: None)  # signals are the main thread's
    loop.start()
    assert retry_until(lambda: (short / "ready").exists(), 20)
    yield agent, cfg_path, dclient
    agent.inbox.put(Shutdown(15))
    loop.join(60)
    assert not loop.is_alive()
    leaked = [t for t in set(threading.enumerate()) - threads_before
              if t.name not in ("docker-events", "dockerd-watch") and t.is_alive()]  # fmt: skip
    assert not leaked, leaked
    for c in dclient.containers.list(all=True, filters=labels.managed_filter(labels.ROLE_WORKER)):
        if str(c.labels.get(labels.PROJECT, "")).startswith(str(tmp_path)):
            c.remove(force=True)
    ui.kill_server()


def _spawn(agent: Agent, tmp_path: Path, name: str) -> str:
    proj = tmp_path / name
    proj.mkdir()
    os.chown(proj, 1234, 1235)
    assert agent.engine is not None
    spec = sessions.spawn(agent.engine, None, agent.cfg, str(proj), agent.layout, {})
    return spec.container


def test_memory_cpus_pids_apply_to_running_workers(
    running: tuple[Agent, Path, docker.DockerClient], tmp_path: Path
) -> None:
    agent, cfg_path, dclient = running
    name = _spawn(agent, tmp_path, "mem")
    c = dclient.containers.get(name)
    assert c.attrs["HostConfig"]["Memory"] == 512 << 20
    saved = save(cfg_path, '[worker]\nmemory = "768m"\ncpus = 1.5\npids = 300\n' + NO_BUILTIN)

    def applied() -> bool:
        c.reload()
        h = c.attrs["HostConfig"]
        return bool(h["Memory"] == 768 << 20 and h["NanoCpus"] == 1_500_000_000
                    and h["PidsLimit"] == 300)  # fmt: skip

    assert retry_until(applied, 10, interval=0.02), c.attrs["HostConfig"]  # speed: see bench
    print(f"save-to-applied: {time.monotonic() - saved:.3f}s")


def test_keys_are_rebound(running: tuple[Agent, Path, docker.DockerClient]) -> None:
    agent, cfg_path, _ = running

    def bound(key: str) -> bool:
        out = agent.ui.server.cmd("list-keys", "-T", "prefix").stdout
        return any(f" {key} " in line and "key stats" in line for line in out)

    assert retry_until(lambda: bound("T"), 5)
    save(cfg_path, BASE.replace('stats = "T"', 'stats = "Y"'))
    assert retry_until(lambda: bound("Y"), 10, interval=0.02)
    assert not bound("T")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[worker\nmemory = 1\n", "config.toml:1:"),
        ('[worker]\ncpus = "two"\n', "config.toml:2:8"),
        ("", "empty"),
    ],
)
def test_a_bad_save_keeps_the_last_good_config_and_says_why(
    running: tuple[Agent, Path, docker.DockerClient], text: str, needle: str
) -> None:
    agent, cfg_path, _ = running
    good = agent.cfg
    cfg_path.write_text(text)

    def reported() -> bool:
        return any(needle in e.text for e in published(agent).errors)

    assert retry_until(reported, 3), published(agent)
    assert agent.cfg == good
    save(cfg_path, BASE.replace('"512m"', '"640m"'))
    assert retry_until(lambda: agent.cfg.worker.memory == "640m", 3)


def test_parent_changes_are_flagged_restart_needed(
    running: tuple[Agent, Path, docker.DockerClient],
) -> None:
    agent, cfg_path, _ = running
    save(cfg_path, BASE + '\n[parent]\nmemory = "8g"\n')
    assert retry_until(lambda: "parent.memory" in published(agent).restart_needed, 3)


def test_a_reload_during_a_spawn_still_gives_the_new_limits(
    running: tuple[Agent, Path, docker.DockerClient], tmp_path: Path
) -> None:
    agent, cfg_path, dclient = running
    old_cfg = agent.cfg  # what a spawn that started just before the save has read
    save(cfg_path, BASE.replace('"512m"', '"700m"'))
    proj = tmp_path / "racing"
    proj.mkdir()
    os.chown(proj, 1234, 1235)
    assert agent.engine is not None
    spec = sessions.spawn(agent.engine, None, old_cfg, str(proj), agent.layout, {})
    c = dclient.containers.get(spec.container)

    def limit() -> int:
        c.reload()
        return int(c.attrs["HostConfig"]["Memory"])

    assert retry_until(lambda: limit() == 700 << 20, 5), limit()


def test_services_start_and_stop_with_the_config(
    running: tuple[Agent, Path, docker.DockerClient],
) -> None:
    agent, cfg_path, dclient = running
    name = f"svc{os.getpid()}"

    def state() -> str:
        # sparse: the list's own data (an inspect after it 404s on one removed in between)
        found = dclient.containers.list(
            all=True, sparse=True, filters={"name": f"^/hal9000-s-{name}$"}
        )
        return found[0].status if found else "absent"

    table = f'\n[services.{name}]\nimage = "hal9000/worker:minimal"\ncommand = ["sleep", "600"]\n'
    try:
        save(cfg_path, BASE + table)
        assert retry_until(lambda: state() == "running", 5), state()
        c = dclient.containers.get(f"hal9000-s-{name}")
        assert c.labels[labels.ROLE] == "service" and c.attrs["HostConfig"]["NetworkMode"] == "host"
        save(cfg_path, BASE + table + "enabled = false\n")
        assert retry_until(lambda: state() == "absent", 5), state()
        # a broken service is reported and harms nothing
        save(cfg_path, BASE + f'\n[services.{name}]\nimage = "none/such:1"\n')
        assert retry_until(
            lambda: any(f"service {name} did not start" in e.text
                        for e in published(agent).errors), 5
        )  # fmt: skip
        assert state() == "absent"
    finally:
        for c in dclient.containers.list(all=True, filters={"name": f"hal9000-s-{name}"}):
            c.remove(force=True)
