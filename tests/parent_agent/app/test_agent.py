"""The agent loop applying saved configs: real watcher, real engine, real tmux."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.layout import ParentLayout
from hal_testing.agent import AgentLoop
from hal_testing.config_text import NO_BUILTIN_SERVICES as NO_BUILTIN
from hal_testing.engine import Projects
from parent_agent.adapters import status_file
from parent_agent.app import sessions
from parent_agent.app.agent import Agent

pytestmark = [pytest.mark.docker, pytest.mark.tmux]


def save(path: Path, text: str) -> float:
    """Save like an editor that renames over the file; returns the time of the save."""
    tmp = path.with_name(".config.toml.swp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return time.monotonic()


BASE = '[worker]\nmemory = "512m"\ncpus = 1.0\n\n[keys]\nstats = "T"\n' + NO_BUILTIN


@pytest.fixture
def running(
    agent_loop: Callable[[str], AgentLoop], dclient: docker.DockerClient
) -> tuple[Agent, Path, docker.DockerClient]:
    """The loop on BASE, its paths in the test's temporary directory (`parent_paths`)."""
    loop = agent_loop(BASE)
    return loop.agent, loop.layout.config_file, dclient


def _spawn(agent: Agent, proj: Path, claude_home: Path) -> str:
    assert agent.client is not None
    spec = sessions.spawn(agent.client, None, agent.cfg, str(proj), claude_home=claude_home)
    return spec.container


def test_memory_cpus_pids_apply_to_running_workers(
    running: tuple[Agent, Path, docker.DockerClient], projects: Projects, parent_paths: ParentLayout
) -> None:
    agent, cfg_path, dclient = running
    name = _spawn(agent, projects.make("mem"), parent_paths.claude_home)
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
        errors = status_file.read(agent.status_file.path).get("errors", [])
        return any(needle in e["text"] for e in errors)

    assert retry_until(reported, 3), status_file.read(agent.status_file.path)
    assert agent.cfg == good
    save(cfg_path, BASE.replace('"512m"', '"640m"'))
    assert retry_until(lambda: agent.cfg.worker.memory == "640m", 3)


def test_parent_changes_are_flagged_restart_needed(
    running: tuple[Agent, Path, docker.DockerClient],
) -> None:
    agent, cfg_path, _ = running
    save(cfg_path, BASE + '\n[parent]\nmemory = "8g"\n')
    assert retry_until(
        lambda: "parent.memory" in status_file.read(agent.status_file.path)["restart_needed"], 3
    )


def test_a_reload_during_a_spawn_still_gives_the_new_limits(
    running: tuple[Agent, Path, docker.DockerClient], projects: Projects, parent_paths: ParentLayout
) -> None:
    agent, cfg_path, dclient = running
    old_cfg = agent.cfg  # what a spawn that started just before the save has read
    save(cfg_path, BASE.replace('"512m"', '"700m"'))
    proj = projects.make("racing")
    assert agent.client is not None
    home = parent_paths.claude_home
    spec = sessions.spawn(agent.client, None, old_cfg, str(proj), claude_home=home)
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
        # ignore_removed: the loop may remove it while docker-py inspects what it listed
        found = dclient.containers.list(
            all=True, filters={"name": f"^/hal9000-s-{name}$"}, ignore_removed=True
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
            lambda: any(f"service {name} did not start" in e["text"]
                        for e in status_file.read(agent.status_file.path)["errors"]), 5
        )  # fmt: skip
        assert state() == "absent"
    finally:
        gone = dclient.containers.list(
            all=True, filters={"name": f"hal9000-s-{name}"}, ignore_removed=True
        )
        for c in gone:
            c.remove(force=True)
