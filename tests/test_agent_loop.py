"""The loop's own decisions, without engines: the dockerd restart budget and its backoff.

`Dockerd` is replaced by a stand-in of our own seam (the supervisor of the inner dockerd),
whose start fails as a dying engine's would; nothing of docker-py or libtmux is faked (the
tmux server is never started by these tests).
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import libtmux

from hal_common.config import Config
from hal_common.errors import EngineUnavailable
from hal_common.layout import ParentLayout
from parent_agent.adapters.tmux import TmuxUI
from parent_agent.app import agent as agent_mod
from parent_agent.app.agent import Agent


class DyingDockerd:
    """A stand-in for our Dockerd supervisor: every start fails like a dockerd that exits."""

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
    layout = ParentLayout(run_dir=tmp_path / "run", log_dir=tmp_path / "log",
                          data_dir=tmp_path / "data", tmux_socket=tmp_path / "t.sock",
                          config_override=tmp_path / "config.toml")  # fmt: skip
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
