"""The agent loop: its own decisions without engines (the dockerd restart budget and its
backoff, what a control request does), then the running loop applying saved configs on the
real watcher, the test engine and a real tmux server (the harness's `agent_loop`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker
import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.config import Config, parse_config
from hal_common.errors import EngineUnavailable
from hal_common.layout import ParentLayout
from hal_testing.agent import AgentLoop
from hal_testing.config_text import NO_BUILTIN_SERVICES as NO_BUILTIN
from hal_testing.engine import Projects
from parent_agent.adapters import snapshot_file, workers
from parent_agent.adapters.control import Reply
from parent_agent.adapters.tmux import TmuxUI
from parent_agent.app import agent as agent_mod
from parent_agent.app import service_runner, sessions
from parent_agent.app.agent import Agent
from parent_agent.app.events import ControlRequest
from parent_agent.core.control import Answer, ReconcileServices, RestartServices
from parent_agent.core.snapshot import Snapshot

# -- the loop's decisions, without engines ---------------------------------------------------


class DyingDockerd:
    """A stand-in for our Dockerd supervisor: every start fails like a dockerd that exits.

    Nothing of docker-py or libtmux is faked (the tmux server is never started by these
    tests)."""

    def __init__(self) -> None:
        self.starts = 0

    def start(self) -> docker.DockerClient:
        self.starts += 1
        raise EngineUnavailable("dockerd exited with code 1")

    def wait(self) -> int:
        return 1

    def stop(self) -> None:
        pass


def _agent(tmp_path: Path, dockerd: DyingDockerd) -> Agent:
    layout = ParentLayout(
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "log",
        data_dir=tmp_path / "data",
        tmux_socket=tmp_path / "t.sock",
        config_override=tmp_path / "config.toml",
    )
    ui = TmuxUI(libtmux.Server(socket_path=str(tmp_path / "t.sock")))
    return Agent(Config(), layout, dockerd=dockerd, ui=ui)  # type: ignore[arg-type]


def test_restarts_back_off_and_a_healthy_period_restores_the_budget(tmp_path: Path) -> None:
    dockerd = DyingDockerd()
    a = _agent(tmp_path, dockerd)
    waits = []
    for _ in range(4):
        before = time.monotonic()
        a._engine_lost()
        waits.append(a.retry_at - before)
    assert [round(w, 1) for w in waits] == [0.5, 1.0, 2.0, 4.0]
    assert a.restarts == 4
    # up for longer than HEALTHY_S before dying again: the budget starts afresh
    a.engine_up_at = time.monotonic() - agent_mod.HEALTHY_S - 1
    a._engine_lost()
    assert a.restarts == 1 and a.retry_at - time.monotonic() <= 0.5


def test_a_dockerd_that_keeps_dying_ends_the_loop_only_after_its_budget(tmp_path: Path) -> None:
    dockerd = DyingDockerd()
    a = _agent(tmp_path, dockerd)
    a._engine_lost()  # as a DockerdExited would
    a.retry_at = 0.0
    for _ in range(agent_mod.MAX_DOCKERD_RESTARTS - 1):
        assert a._ensure_engine()  # a start that fails counts, and waits again
        a.retry_at = 0.0  # skip the backoff's wait
    assert dockerd.starts == agent_mod.MAX_DOCKERD_RESTARTS - 1
    assert a._ensure_engine() and a.restarts == agent_mod.MAX_DOCKERD_RESTARTS + 1
    assert not a._ensure_engine()  # the budget is spent: the loop ends (and says why)
    assert [e.text for e in a.errors][-1] == "the inner dockerd did not start: " + (
        "dockerd exited with code 1"
    )


def test_no_start_is_tried_before_the_backoff_is_over(tmp_path: Path) -> None:
    dockerd = DyingDockerd()
    a = _agent(tmp_path, dockerd)
    a._engine_lost()
    a.retry_at = time.monotonic() + 60
    assert a._ensure_engine() and dockerd.starts == 0


def test_the_loop_decides_what_a_request_does_and_answers_with_the_runners_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent loop's side, without engines: the runner's jobs are recorded, not run."""
    cfg = parse_config("[services.memory-bank]\nenabled = false\n")
    layout = ParentLayout(run_dir=tmp_path, config_override=tmp_path / "c.toml")
    agent = Agent(cfg, layout, ui=object())  # type: ignore[arg-type]
    jobs: list[service_runner.Job] = []
    monkeypatch.setattr(agent.services, "submit", jobs.append)
    reply = Reply()
    agent.on_request(ControlRequest(ReconcileServices(), reply))
    assert reply.wait(0.5, threading.Event()) == Answer(False, "the inner engine is not running")
    agent.engine = object()  # type: ignore[assignment]
    reply = Reply()
    agent.on_request(ControlRequest(RestartServices(("chromadb", "memory-bank")), reply))
    no = "no enabled service memory-bank (hal-agent services lists them)"
    assert reply.wait(0.5, threading.Event()) == Answer(False, no)
    assert jobs == []
    reply = Reply()
    agent.on_request(ControlRequest(RestartServices(("chromadb",)), reply))
    (job,) = jobs
    assert isinstance(job, service_runner.RestartServices) and job.names == ("chromadb",)
    assert job.plan.names == ("chromadb", "chroma-mcp") and job.reply is reply
    agent.on_services_done(service_runner.ServicesDone(job, ("oops",), ("service chromadb: gone",)))
    answer = reply.wait(0.5, threading.Event())
    assert answer == Answer(False, "service chromadb: gone", ("oops", "service chromadb: gone"))
    assert [e.text for e in agent.errors] == ["oops"]
    reply = Reply()
    agent.on_request(ControlRequest(ReconcileServices(), reply))
    assert isinstance(jobs[-1], service_runner.ApplyServices) and jobs[-1].reply is reply
    agent.on_services_done(service_runner.ServicesDone(jobs[-1], ()))
    assert reply.wait(0.5, threading.Event()) == Answer(True)


# -- the running loop applying saved configs (the test engine and tmux: marked so) ---------


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


BASE = '[worker]\nmemory = "512m"\ncpus = 1.0\n\n[keys]\nstats = "T"\n' + NO_BUILTIN


@pytest.fixture
def running(
    agent_loop: Callable[[str], AgentLoop], dclient: docker.DockerClient
) -> tuple[Agent, Path, docker.DockerClient]:
    """The loop on BASE, its paths in the test's temporary `parent_layout`."""
    loop = agent_loop(BASE)
    return loop.agent, loop.layout.config_file, dclient


def _spawn(agent: Agent, proj: Path) -> str:
    assert agent.engine is not None
    spec = sessions.spawn(agent.engine, None, agent.cfg, str(proj), agent.layout, {})
    return spec.container


@pytest.mark.docker
@pytest.mark.tmux
def test_memory_cpus_pids_apply_to_running_workers(
    running: tuple[Agent, Path, docker.DockerClient], projects: Projects
) -> None:
    agent, cfg_path, dclient = running
    name = _spawn(agent, projects.make("mem"))
    c = dclient.containers.get(name)
    assert c.attrs["HostConfig"]["Memory"] == 512 << 20
    saved = save(cfg_path, '[worker]\nmemory = "768m"\ncpus = 1.5\npids = 300\n' + NO_BUILTIN)

    def applied() -> bool:
        c.reload()
        h = c.attrs["HostConfig"]
        return bool(
            h["Memory"] == 768 << 20 and h["NanoCpus"] == 1_500_000_000 and h["PidsLimit"] == 300
        )

    assert retry_until(applied, 10, interval=0.02), c.attrs["HostConfig"]  # speed: see bench
    print(f"save-to-applied: {time.monotonic() - saved:.3f}s")


@pytest.mark.docker
@pytest.mark.tmux
def test_keys_are_rebound(running: tuple[Agent, Path, docker.DockerClient]) -> None:
    agent, cfg_path, _ = running

    def bound(key: str) -> bool:
        out = agent.ui.server.cmd("list-keys", "-T", "prefix").stdout
        return any(f" {key} " in line and "key stats" in line for line in out)

    assert retry_until(lambda: bound("T"), 5)
    save(cfg_path, BASE.replace('stats = "T"', 'stats = "Y"'))
    assert retry_until(lambda: bound("Y"), 10, interval=0.02)
    assert not bound("T")


@pytest.mark.docker
@pytest.mark.tmux
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


@pytest.mark.docker
@pytest.mark.tmux
def test_parent_changes_are_flagged_restart_needed(
    running: tuple[Agent, Path, docker.DockerClient],
) -> None:
    agent, cfg_path, _ = running
    save(cfg_path, BASE + '\n[parent]\nmemory = "8g"\n')
    assert retry_until(lambda: "parent.memory" in published(agent).restart_needed, 3)


@pytest.mark.docker
@pytest.mark.tmux
def test_a_reload_during_a_spawn_still_gives_the_new_limits(
    running: tuple[Agent, Path, docker.DockerClient], projects: Projects
) -> None:
    agent, cfg_path, dclient = running
    old_cfg = agent.cfg  # what a spawn that started just before the save has read
    save(cfg_path, BASE.replace('"512m"', '"700m"'))
    proj = projects.make("racing")
    assert agent.engine is not None
    spec = sessions.spawn(agent.engine, None, old_cfg, str(proj), agent.layout, {})
    c = dclient.containers.get(spec.container)

    def limit() -> int:
        c.reload()
        return int(c.attrs["HostConfig"]["Memory"])

    assert retry_until(lambda: limit() == 700 << 20, 5), limit()


@pytest.mark.docker
@pytest.mark.tmux
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
            lambda: any(f"service {name} did not start" in e.text for e in published(agent).errors),
            5,
        )
        assert state() == "absent"
    finally:
        gone = dclient.containers.list(
            all=True, filters={"name": f"hal9000-s-{name}"}, ignore_removed=True
        )
        for c in gone:
            c.remove(force=True)


def _hal_agent(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`hal-agent ARGS` as the parent's shell runs it (the `agent_loop` fixture's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "parent_agent", *args],
        env={**os.environ, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.docker
@pytest.mark.tmux
def test_a_spawn_is_done_by_the_loop_and_its_command_imports_no_engine_library(
    running: tuple[Agent, Path, docker.DockerClient], projects: Projects
) -> None:
    agent, _, dclient = running
    assert agent.engine is not None
    proj = projects.make("quick")
    res = _hal_agent("spawn", str(proj), "--no-window", PYTHONPROFILEIMPORTTIME="1")
    assert res.returncode == 0, res.stderr[-3000:]
    session = res.stdout.strip()
    imported = {ln.rsplit("|", 1)[1].strip() for ln in res.stderr.splitlines() if "|" in ln}
    assert "parent_agent.commands.quick" in imported
    # the loop made it: this process never loaded what a spawn of its own needs
    assert not imported & {"docker", "click", "libtmux", "tomlkit", "requests"}, imported
    w = workers.find_by_session(agent.engine, session)
    assert w is not None and w.project == str(proj) and w.state == "running"
    assert dclient.containers.get(w.container).attrs["HostConfig"]["Memory"] == 512 << 20
    # again: the same worker, nothing new; with its window this time (the loop's tmux)
    again = _hal_agent("spawn", str(proj), "--no-attach")
    assert (again.returncode, again.stdout.strip()) == (0, session), again.stderr
    assert session in agent.ui.window_names()
    # a refusal says what the full command says, with its exit code
    argv = ["spawn", "/etc", "--no-window"]
    quick = _hal_agent(*argv)
    full = subprocess.run(
        [sys.executable, "-c", "from parent_agent.commands.cli import main; main()", *argv],
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert quick.returncode == full.returncode == 2
    assert quick.stderr == full.stderr and "/etc" in quick.stderr
