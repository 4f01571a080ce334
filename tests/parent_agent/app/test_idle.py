"""An idle parent does nothing on a timer that nobody needs (issue 13, row 11): the snapshot
is written when it changed (or as a heartbeat), the usage sampler runs only while someone
looks at the dashboard, and the services are probed rarely while all is well and unseen.

No engine and no tmux: the loop's decisions, on an `Agent` that never started. The sampler's
engine is a seam of ours (a counter of stats calls): what is tested is when it is asked."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hal_common.config import Config
from hal_common.layout import ParentLayout
from parent_agent.adapters import snapshot_file
from parent_agent.adapters.usage import BackgroundSampler
from parent_agent.app import agent as agent_mod
from parent_agent.app.agent import Agent
from parent_agent.core.model import ServiceState, Worker
from parent_agent.core.snapshot import Health, Snapshot
from parent_agent.core.usage import Usage


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    layout = ParentLayout(data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    return Agent(Config(), layout)


def test_no_snapshot_write_when_nothing_changed(agent: Agent) -> None:
    path = agent.layout.status_file
    agent.publish()
    first = snapshot_file.version(path)
    assert first is not None
    for _ in range(5):  # ticks: the clock moves, nothing else
        agent.publish()
    assert snapshot_file.version(path) == first
    agent.record_error("something broke")  # a change: written at once
    agent.publish()
    second = snapshot_file.version(path)
    assert second != first
    snap = snapshot_file.read(path)
    assert snap is not None and snap.errors[-1].text == "something broke"
    # the heartbeat: unchanged, but older than HEARTBEAT_S, it is written again (the
    # dashboard and `ls` tell a live loop by its clock)
    agent.published_at -= agent_mod.HEARTBEAT_S
    agent.publish()
    assert snapshot_file.version(path) != second
    beat = snapshot_file.read(path)
    assert beat is not None and beat.now > snap.now
    assert dataclasses.replace(beat, now=snap.now) == snap  # the same picture, a later clock


def test_restamp_moves_only_the_clock() -> None:
    snap = Snapshot(datetime(2026, 1, 1, tzinfo=UTC), Health(True), errors=())
    later = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    again = Snapshot.from_json(snapshot_file.restamp(snap.to_json(), later))
    assert again == dataclasses.replace(snap, now=later)
    with pytest.raises(ValueError):
        snapshot_file.restamp('{"workers": [{"now": "x"}]}' + " " * 40, later)


def test_the_free_disk_shows_when_it_moved_enough() -> None:
    gib = 1 << 30
    assert not agent_mod.moved(40 * gib, 40 * gib - (100 << 20))  # a log line's worth
    assert agent_mod.moved(40 * gib, 37 * gib)
    assert agent_mod.moved(gib, gib - (300 << 20))  # little left: every 256 MiB


def test_a_look_at_the_dashboard_is_a_change(agent: Agent) -> None:
    agent.publish()
    before = snapshot_file.read(agent.layout.status_file)
    assert before is not None and not before.viewed
    agent.viewed = True
    agent.publish()
    after = snapshot_file.read(agent.layout.status_file)
    assert after is not None and after.viewed


class _Sampler:
    """What the loop asks of its BackgroundSampler."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def want(self, running: list[Worker]) -> dict[str, Usage]:
        self.calls.append("want")
        return {}

    def pause(self) -> dict[str, Usage]:
        self.calls.append("pause")
        return {}


def test_the_sampler_is_paused_while_nobody_views(agent: Agent) -> None:
    fake = _Sampler()
    agent.sampler = fake  # type: ignore[assignment]
    agent.snapshot()
    assert fake.calls == ["pause"]
    agent.viewed = True
    agent.snapshot()
    assert fake.calls == ["pause", "want"]


def test_services_are_probed_rarely_while_well_and_unseen(agent: Agent) -> None:
    ok = ServiceState("chroma", True, "ok")
    agent.service_health = (ok,)
    assert agent._probe_every() == agent_mod.SERVICES_IDLE_S
    agent.viewed = True
    assert agent._probe_every() == agent_mod.SERVICES_EVERY_S
    agent.viewed = False
    agent.service_health = (ok, ServiceState("memory-bank", False, "starting"))
    assert agent._probe_every() == agent_mod.SERVICES_EVERY_S


class _Engine:
    """Counts the stats calls (a worker without a pid is asked of the engine)."""

    def __init__(self) -> None:
        self.asked = threading.Semaphore(0)
        self.count = 0

    def stats(self, container: str) -> dict[str, Any] | None:
        self.count += 1
        self.asked.release()
        return None


def test_the_background_sampler_samples_only_while_wanted() -> None:
    engine = _Engine()
    sampler = BackgroundSampler(engine, interval=0.01)  # type: ignore[arg-type]
    try:
        assert not engine.asked.acquire(timeout=0.3)  # never wanted: never asks
        w = Worker("a", "hal9000-w-a", "/p", "img", "running", None, None)
        sampler.want([w])
        assert engine.asked.acquire(timeout=5)
        sampler.pause()
        while engine.asked.acquire(timeout=0.3):  # a sample under way may finish
            pass
        assert not engine.asked.acquire(timeout=0.3)  # then nothing
        sampler.want([w])
        assert engine.asked.acquire(timeout=5)
    finally:
        sampler.close()


def test_an_idle_loop_waits_for_its_next_timer_not_a_fixed_tick(agent: Agent) -> None:
    """The loop's wait (`next_due`): the heartbeat's HEARTBEAT_S while nothing else is due
    and nobody looks; the dashboard's refresh while it is looked at; the agents' record
    within RECORD_EVERY_S of a change; an overdue timer (one that could not run) a TICK."""
    agent.publish()  # the heartbeat just written
    agent.tmux_checked = time.monotonic()
    agent.retry_at = time.monotonic() + 60  # no engine in this test: its restart not yet due
    assert agent.next_due() == pytest.approx(agent_mod.HEARTBEAT_S, abs=0.1)
    agent.viewed = True
    agent.drawn = (agent.drawn[0], agent.drawn[1], time.monotonic())
    assert agent.next_due() == pytest.approx(agent.cfg.dashboard.refresh, abs=0.1)
    agent.viewed = False
    agent.record_dirty, agent.recorded_at = True, time.monotonic()
    assert agent.next_due() == pytest.approx(agent_mod.RECORD_EVERY_S, abs=0.1)
    agent.recorded_at -= 60  # overdue: its save failed
    assert agent.next_due() == agent_mod.TICK
