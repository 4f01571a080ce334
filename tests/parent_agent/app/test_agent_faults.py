"""The loop survives its own faults, and knows each worker's agent.

The loop runs in-process (the harness's `agent_loop`: the test engine stands in for the inner
one, a real tmux server, real workers). Faults are real where the kernel can make them: a full
disk is a small tmpfs filled to the last byte. An exception "in a handler" is injected through
our own seam (an `Agent` method replaced for one event): nothing else raises on demand.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest
from libtmux.test.retry import retry_until

from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_testing.agent import AgentLoop, agent_env
from hal_testing.config_text import NO_BUILTIN_SERVICES as NO_BUILTIN
from hal_testing.engine import Projects
from parent_agent.adapters import agent_record, snapshot_file
from parent_agent.adapters.agent_reports import AgentReport
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app import sessions
from parent_agent.app.agent import Agent
from parent_agent.app.events import LoopNote
from parent_agent.core.agent_state import AgentState, HookEvent
from parent_agent.core.snapshot import Snapshot

# the agent is a sleep: no Claude Code of its own reporting (the test's reports are the only ones)
BASE = '[worker]\nmemory = "512m"\ncpus = 1.0\ncommand = ["sleep", "86400"]\n' + NO_BUILTIN
SID = "0b5e4a8c-1f2d-4e3a-9b7c-6d5e4f3a2b1c"


def published(layout: ParentLayout) -> Snapshot:
    snap = snapshot_file.read(layout.status_file)
    assert snap is not None
    return snap


def errors(layout: ParentLayout) -> list[str]:
    return [e.text for e in published(layout).errors]


def _spawn(agent: Agent, proj: Path) -> str:
    """A worker for `proj`, with its window (as `hal-agent spawn` makes them)."""
    assert agent.engine is not None
    return sessions.spawn(agent.engine, agent.ui, agent.cfg, str(proj), agent.layout, {}).session


# -- the record, without engines -------------------------------------------------------------


def test_the_record_round_trips_and_a_broken_one_reads_as_empty(tmp_path: Path) -> None:
    layout = ParentLayout(data_dir=tmp_path)
    now = datetime.now(UTC)
    rec = agent_record.Record({"a": AgentState("idle", now, "turn done", SID)}, frozenset({"a"}))
    agent_record.save(layout, rec)
    assert agent_record.load(layout) == rec
    for junk in (b"", b"{", b'{"version": 99}', b"[1, 2]", b'{"version": 1, "agents": 3}'):
        agent_record.record_path(layout).write_bytes(junk)
        assert agent_record.load(layout) == agent_record.Record()


# -- with the loop ---------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.tmux
def test_an_exception_in_a_handler_is_recorded_and_the_loop_goes_on(
    agent_loop: Callable[[str], AgentLoop],
) -> None:
    loop = agent_loop(BASE)
    agent = loop.agent
    real = agent.on_report

    def broken(session: str, events: tuple[HookEvent, ...]) -> None:
        agent.on_report = real  # type: ignore[method-assign]
        raise RuntimeError("injected fault")

    agent.on_report = broken  # type: ignore[method-assign]
    agent.inbox.put(AgentReport("nobody", (HookEvent("Stop"),)))

    def reported() -> bool:
        return any("injected fault" in e and "AgentReport" in e for e in errors(loop.layout))

    assert retry_until(reported, 5), errors(loop.layout)
    assert loop.thread.is_alive()
    agent.inbox.put(LoopNote("still listening"))
    assert retry_until(lambda: "still listening" in errors(loop.layout), 5)


@pytest.fixture
def small_disk(parent_layout: ParentLayout) -> Iterator[Callable[[], None]]:
    """The layout's data and run directories on 1 MiB tmpfs mounts; `fill()` takes every
    byte left (a file that grows until ENOSPC). Unmounted afterwards."""
    mounts = [parent_layout.data_dir, parent_layout.run_dir]
    for m in mounts:
        m.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(m)], check=True)

    def fill() -> None:
        for m in mounts:
            with (m / "filler").open("wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError as e:
                    assert e.errno == errno.ENOSPC

    yield fill
    # the loop's tmux server has its socket on the run mount: it goes first (the loop is
    # stopped after this fixture's teardown, and would not find it)
    subprocess.run(["tmux", "-S", str(parent_layout.tmux_sock), "kill-server"], check=False)
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], check=False)


@pytest.mark.docker
@pytest.mark.tmux
def test_a_full_disk_fails_a_spawn_clearly_and_the_loop_goes_on(
    agent_loop: Callable[[str], AgentLoop],
    small_disk: Callable[[], None],
    projects: Projects,
    dclient: docker.DockerClient,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    loop = agent_loop(BASE)
    layout = loop.layout
    running = _spawn(loop.agent, projects.make("before"))
    small_disk()
    # a state change: the record and the snapshot cannot be written
    loop.agent.inbox.put(AgentReport(running, (HookEvent("UserPromptSubmit", session_id=SID),)))
    with pytest.raises(HalError) as e:
        _spawn(loop.agent, projects.make("after"))
    assert "No space left on device" in str(e.value) and "is full" in str(e.value)
    assert loop.thread.is_alive()
    assert dclient.containers.get(f"hal9000-w-{running}").status == "running"

    def refused() -> bool:  # the loop's own list: the snapshot cannot be written either
        return any("record not saved" in e.text and "No space" in e.text for e in loop.agent.errors)

    assert retry_until(refused, 5), loop.agent.errors
    # space again: what the loop kept while the disk was full is there
    (layout.data_dir / "filler").unlink()
    (layout.run_dir / "filler").unlink()
    loop.agent.inbox.put(LoopNote("space again"))

    def caught_up() -> bool:
        snap = snapshot_file.read(layout.status_file)
        return snap is not None and any("space again" in e.text for e in snap.errors)

    assert retry_until(caught_up, 5)
    assert published(layout).agents[running].state == "working"

    def recorded() -> bool:
        rec = agent_record.load(layout)
        return running in rec.agents and rec.agents[running].session_id == SID

    assert retry_until(recorded, 5)


@pytest.mark.docker
@pytest.mark.tmux
def test_a_stale_ready_file_is_not_taken_for_this_run(
    parent_layout: ParentLayout,
    docker_host: str,
    built_images: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ready file an earlier run left (a /run that is not a tmpfs) is gone before the
    engine starts (claudy's `hal-agent ready` would take it for this run's), and written
    again once this run is ready. The engine seam records what it saw when started."""
    for key, value in agent_env(parent_layout).items():
        monkeypatch.setenv(key, value)
    parent_layout.config_file.parent.mkdir(parents=True, exist_ok=True)
    parent_layout.config_file.write_text(BASE)
    parent_layout.ready_file.parent.mkdir(parents=True, exist_ok=True)
    parent_layout.ready_file.write_text("stale\n")
    loop = AgentLoop(parent_layout, docker_host)
    seen: list[bool] = []
    start = loop.agent.dockerd.start

    def recording_start() -> InnerEngine:
        seen.append(parent_layout.ready_file.exists())
        return start()

    loop.agent.dockerd.start = recording_start  # type: ignore[method-assign,assignment]
    loop.thread.start()
    try:
        ready = parent_layout.ready_file
        assert retry_until(lambda: ready.exists() and ready.read_text() == "ready\n", 20)
        assert seen == [False]
    finally:
        assert not loop.stop()


@pytest.mark.docker
@pytest.mark.tmux
def test_a_bad_prefix_at_boot_runs_on_the_defaults_and_says_so(
    agent_loop: Callable[[str], AgentLoop],
) -> None:
    loop = agent_loop('[keys]\nprefix = "Ctrl-B"\n' + NO_BUILTIN)
    assert loop.agent.cfg.keys.prefix == "C-b"
    assert any("prefix" in e and "defaults" in e for e in errors(loop.layout)), errors(loop.layout)
    assert loop.agent.ui.server.cmd("show-options", "-gv", "prefix").stdout == ["C-b"]


@pytest.mark.docker
@pytest.mark.tmux
def test_reports_and_exits_make_the_agent_state(
    agent_loop: Callable[[str], AgentLoop], projects: Projects, dclient: docker.DockerClient
) -> None:
    """The loop folds a worker's reports (put on its inbox as the report watcher does) and
    its container's exit into the state `ls`, the dashboard and the marks show."""
    loop = agent_loop(BASE)
    agent, layout = loop.agent, loop.layout
    name = _spawn(agent, projects.make("states"))

    def state() -> AgentState | None:
        return published(layout).agents.get(name)

    assert retry_until(lambda: state() is not None, 5)
    permission = HookEvent("Notification", SID, "permission_prompt", "Claude needs your permission")
    agent.inbox.put(AgentReport(name, (HookEvent("UserPromptSubmit", SID), permission)))
    assert retry_until(lambda: (s := state()) is not None and s.state == "waiting", 5), state()
    mark = agent.ui.server.cmd("show-options", "-wqv", "-t", f"=hal:={name}", "@hal_agent")
    assert mark.stdout == ["waiting"], mark.stdout
    assert retry_until(lambda: agent.status.startswith("1 need you"), 5), agent.status
    resume = (layout.worker_run(name) / "resume").read_text().strip()
    assert resume == SID
    dclient.containers.get(f"hal9000-w-{name}").kill()  # SIGKILL: exit 137

    def exited() -> bool:
        s = state()
        return s is not None and s.state == "exited" and s.exit_code == 137

    assert retry_until(exited, 10), state()
    s = state()
    assert s is not None and s.session_id == SID and s.label() == "exited 137"

    def recorded() -> object:  # written at most every RECORD_EVERY_S: the next tick at most
        return json.loads(agent_record.record_path(layout).read_text())["agents"][name]

    assert retry_until(lambda: recorded()["exit_code"] == 137, 5), recorded()  # type: ignore[index]


@pytest.mark.docker
@pytest.mark.tmux
def test_an_agent_that_fails_is_restarted_on_failure_and_an_oom_is_told_as_such(
    agent_loop: Callable[[str], AgentLoop], projects: Projects, dclient: docker.DockerClient
) -> None:
    """The worker's exit status is its agent's: `restart = "on-failure"` restarts an agent
    that exits 3 (the engine's policy acts on it), and the kernel's OOM kill shows as
    `exited 137 (OOM)`."""
    loop = agent_loop(
        '[worker]\nmemory = "64m"\ncpus = 1.0\nrestart = "on-failure"\n'
        'command = ["sh", "-c", "sleep 1; exit 3"]\n' + NO_BUILTIN
    )
    name = _spawn(loop.agent, projects.make("fails"))
    c = dclient.containers.get(f"hal9000-w-{name}")

    def restarted() -> bool:
        c.reload()
        return int(c.attrs["RestartCount"]) >= 1

    assert retry_until(restarted, 20)
    assert retry_until(
        lambda: any(f"{name}: the agent exited 3" in e.text for e in loop.agent.errors), 10
    ), loop.agent.errors

    save = '[worker]\nmemory = "64m"\ncpus = 1.0\ncommand = ["tail", "/dev/zero"]\n' + NO_BUILTIN
    loop.layout.config_file.write_text(save)
    assert retry_until(lambda: loop.agent.cfg.worker.command == ("tail", "/dev/zero"), 10)
    oom = _spawn(loop.agent, projects.make("oom"))

    def told() -> bool:
        s = published(loop.layout).agents.get(oom)
        return s is not None and s.label() == "exited 137 (OOM)"

    assert retry_until(told, 30), published(loop.layout).agents.get(oom)


@pytest.mark.docker
@pytest.mark.tmux
def test_the_next_loop_brings_back_the_workers_that_ran(
    parent_layout: ParentLayout,
    docker_host: str,
    agent_loop: Callable[[str], AgentLoop],
    projects: Projects,
    dclient: docker.DockerClient,
) -> None:
    """The parent stops (its loop stops every worker) and starts again: the workers that
    ran are started by the loop itself, each with its window, no `claudy` per project.
    (The first loop is made by hand: the fixture's loops must not overlap.)"""
    parent_layout.config_file.parent.mkdir(parents=True, exist_ok=True)
    parent_layout.config_file.write_text(BASE)
    first = AgentLoop(parent_layout, docker_host)
    first.start()
    try:
        names = [_spawn(first.agent, projects.make(n)) for n in ("back-a", "back-b")]

        def recorded() -> bool:
            return set(names) <= agent_record.load(parent_layout).running

        assert retry_until(recorded, 10)
    finally:
        assert not first.stop()
    assert {dclient.containers.get(f"hal9000-w-{n}").status for n in names} == {"exited"}
    second = agent_loop(BASE)

    def back() -> bool:
        states = {dclient.containers.get(f"hal9000-w-{n}").status for n in names}
        return states == {"running"} and set(names) <= second.agent.ui.window_names()

    assert retry_until(back, 30), (second.agent.errors, second.agent.ui.window_names())
