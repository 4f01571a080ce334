"""The worker's entrypoint with the real worker image and a real engine: the worker exits
with its agent's status (kill -9 → 137, exit 3 → 3, the OOM killer → 137 and OOMKilled),
stops promptly, resumes a conversation only when it can, passes text, keys and bells, and
its hooks land in its own report directory."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.config import WorkerConfig
from hal_common.layout import ParentLayout
from hal_testing import claude
from hal_testing.engine import GID, UID, Projects
from parent_agent.adapters import workers
from parent_agent.adapters.agent_reports import ReportWatcher
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app.sessions import prepare_claude_home
from parent_agent.core.agent_state import HookEvent
from parent_agent.core.spec import worker_spec

pytestmark = pytest.mark.docker

SID = "0b9c2d36-5a8e-4c3f-9a61-2f0e8d7c6b5a"
SOCK = "/tmp/hal-worker.tmux"  # inside the worker


@pytest.fixture
def engine(dclient: docker.DockerClient, built_images: dict[str, str]) -> InnerEngine:
    return InnerEngine(dclient)


def start(
    engine: InnerEngine,
    layout: ParentLayout,
    project: Path,
    command: tuple[str, ...] = ("claude",),
    memory: str = "512m",
    before: Any = None,
) -> Container:
    cfg = WorkerConfig(command=command, memory=memory, cpus=1.0, pids=256, restart="no")
    spec = worker_spec(str(project), cfg, UID, GID, {}, layout=layout, claude=claude.mount())
    prepare_claude_home(layout, spec.session, UID, GID, str(project))
    if before is not None:
        before(spec.session)
    attrs = workers.ensure_worker(engine, spec, layout)
    return engine.client.containers.get(attrs["Id"])


def sh(c: Container, script: str) -> tuple[int, str]:
    res = c.exec_run(["sh", "-c", script])
    assert isinstance(res.output, bytes)
    return int(res.exit_code or 0), res.output.decode(errors="replace").strip()


def ended(c: Container, timeout: float = 30) -> dict[str, Any]:
    code = c.wait(timeout=timeout)["StatusCode"]
    c.reload()
    state: dict[str, Any] = c.attrs["State"]
    assert state["ExitCode"] == code
    return state


def pane_ready(c: Container) -> None:
    assert retry_until(lambda: sh(c, "hal-worker pid")[1].isdigit(), 10)


def test_kill_9_of_the_agent_ends_the_worker_with_137(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    c = start(engine, parent_layout, projects.make("k"), ("sleep", "1000"))
    pane_ready(c)
    assert (
        sh(c, "ps -o comm= -p $(hal-worker pid) 2>/dev/null || cat /proc/$(hal-worker pid)/comm")[1]
        == "sleep"
    )
    sh(c, "kill -9 $(hal-worker pid)")
    state = ended(c)
    assert state["ExitCode"] == 137 and state["OOMKilled"] is False


def test_the_agents_own_exit_status_is_the_workers(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    c = start(engine, parent_layout, projects.make("e"), ("sh", "-c", "sleep 1; exit 3"))
    assert ended(c)["ExitCode"] == 3
    c = start(engine, parent_layout, projects.make("z"), ("sh", "-c", "sleep 1"))
    assert ended(c)["ExitCode"] == 0


def test_out_of_memory_gives_137_and_oomkilled(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    # tail keeps the whole "line" of /dev/zero (it has no newline): it grows until killed
    c = start(engine, parent_layout, projects.make("m"), ("tail", "/dev/zero"), memory="64m")
    state = ended(c, 60)
    assert state["ExitCode"] == 137 and state["OOMKilled"] is True


def test_docker_stop_stops_it_promptly_with_143(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    c = start(engine, parent_layout, projects.make("s"), ("sleep", "1000"))
    pane_ready(c)
    t0 = time.monotonic()
    c.stop(timeout=10)
    assert time.monotonic() - t0 < 5
    assert ended(c)["ExitCode"] == 143
    # an agent that ignores SIGTERM is hung up on after ~3 s: still before the engine's kill
    c = start(engine, parent_layout, projects.make("s2"), ("sh", "-c", "trap '' TERM; sleep 1000"))
    pane_ready(c)
    t0 = time.monotonic()
    c.stop(timeout=10)
    assert time.monotonic() - t0 < 8
    assert ended(c)["ExitCode"] == 143


def fake_claude(project: Path) -> str:
    """A `claude` that records its arguments and waits (the real one needs a login)."""
    bindir = project / "bin"
    bindir.mkdir()
    f = bindir / "claude"
    f.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > /tmp/claude-args\nexec sleep 1000\n')
    f.chmod(0o755)
    return str(f)


def transcript(layout: ParentLayout, session: str, sid: str) -> None:
    d = layout.worker_state(session) / "projects" / "-some-project"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{sid}.jsonl").write_text("{}\n")
    for p in (d.parent, d, d / f"{sid}.jsonl"):
        os.chown(p, UID, GID)


def args_of(c: Container) -> list[str]:
    assert retry_until(lambda: sh(c, "test -f /tmp/claude-args")[0] == 0, 10)
    return sh(c, "cat /tmp/claude-args")[1].splitlines()


@pytest.mark.parametrize(
    ("written", "has_transcript", "resumed"),
    [
        (SID, True, True),  # the conversation goes on
        (SID, False, False),  # its transcript is gone: a plain start
        (None, True, False),  # nothing to resume
        ("bogus", True, False),  # not an id (write_resume writes nothing)
    ],
)
def test_a_worker_resumes_its_conversation_only_when_it_can(
    engine: InnerEngine,
    parent_layout: ParentLayout,
    projects: Projects,
    written: str | None,
    has_transcript: bool,
    resumed: bool,
) -> None:
    project = projects.make("r")
    claude = fake_claude(project)

    def before(session: str) -> None:
        if has_transcript:
            transcript(parent_layout, session, SID)
        workers.write_resume(parent_layout, session, written)

    c = start(engine, parent_layout, project, (claude, "--model", "x"), before=before)
    want = ["--model", "x", *(["--resume", SID] if resumed else [])]
    assert args_of(c) == want
    # the pane's own process is the agent
    pid = sh(c, "hal-worker pid")[1]
    assert "sleep" in sh(c, f"cat /proc/{pid}/cmdline | tr '\\0' ' '")[1]


def test_a_malformed_resume_file_is_a_plain_start(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    project = projects.make("rb")
    claude = fake_claude(project)

    def before(session: str) -> None:
        transcript(parent_layout, session, SID)
        for bad in (f"{SID} --dangerously-skip-permissions", f"../{SID}", f"{SID}x"):
            transcript(parent_layout, session, bad.replace("/", "_"))
        parent_layout.worker_run(session).mkdir(parents=True, exist_ok=True)
        (parent_layout.worker_run(session) / "resume").write_text(f"{SID}'; touch /tmp/x; '\n")

    c = start(engine, parent_layout, project, (claude,), before=before)
    assert args_of(c) == [""] or args_of(c) == []
    assert sh(c, "test -e /tmp/x")[0] != 0
    # the user's own choice of conversation wins
    c.stop(timeout=5)
    project2 = projects.make("rc")
    claude2 = fake_claude(project2)

    def before2(session: str) -> None:
        transcript(parent_layout, session, SID)
        workers.write_resume(parent_layout, session, SID)

    c = start(engine, parent_layout, project2, (claude2, "--continue"), before=before2)
    assert args_of(c) == ["--continue"]


def test_send_and_keys_type_into_the_agent_and_bells_pass(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    c = start(engine, parent_layout, projects.make("t"), ("cat",))
    pane_ready(c)
    assert sh(c, "hal-worker send \"it's -n a 'test'\"")[0] == 0
    assert sh(c, "hal-worker send --no-enter half")[0] == 0
    assert sh(c, "hal-worker keys Space w a y Enter")[0] == 0

    def screen() -> str:
        return sh(c, f"tmux -S {SOCK} capture-pane -p -t =agent:")[1]

    # cat echoes each line back: typed (the terminal's echo), then printed
    assert retry_until(lambda: screen().count("half way") == 2, 10), screen()
    assert screen().count("it's -n a 'test'") == 2
    opts = sh(c, f"tmux -S {SOCK} show -gv bell-action; tmux -S {SOCK} show -gv visual-bell")
    assert opts[1].split() == ["any", "off"]
    code, out = sh(c, "hal-worker send")
    assert code != 0 and "usage" in out
    sh(c, "hal-worker keys C-d")  # cat ends: so does the worker, with its status
    assert ended(c)["ExitCode"] == 0


def test_a_hook_lands_in_its_own_workers_report_dir(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    a = start(engine, parent_layout, projects.make("ha"), ("sleep", "1000"))
    b = start(engine, parent_layout, projects.make("hb"), ("sleep", "1000"))
    _, out = sh(
        a,
        'printf \'{"hook_event_name":"UserPromptSubmit","session_id":"%s"}\' '
        f"{SID} | hal-worker hook; echo rc=$?",
    )
    assert out == "rc=0"  # nothing printed
    sa, sb = (x.labels[labels.SESSION] for x in (a, b))
    names = os.listdir(parent_layout.worker_reports(sa))
    assert len(names) == 1 and names[0].endswith(".json")
    st = (parent_layout.worker_reports(sa) / names[0]).stat()
    assert (st.st_uid, st.st_gid) == (UID, GID)
    assert os.listdir(parent_layout.worker_reports(sb)) == []
    (report,) = ReportWatcher(parent_layout, lambda r: None).scan()
    assert report.session == sa and report.events[0].session_id == SID
    assert report.events[0].event == "UserPromptSubmit"


def test_a_hook_that_means_waiting_rings_the_bell_and_others_do_not(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    """A permission dialog rings the agent pane's bell (the worker's tmux passes it to its
    client, the parent's window); a prompt or a tool run does not."""
    c = start(engine, parent_layout, projects.make("bell"), ("sleep", "1000"))
    pane_ready(c)

    def bell_flag() -> str:
        return sh(c, f"tmux -S {SOCK} display -p -t =agent: '#{{window_bell_flag}}'")[1]

    def hook(payload: str) -> None:
        assert sh(c, f"printf '%s' '{payload}' | hal-worker hook")[0] == 0

    hook('{"hook_event_name": "UserPromptSubmit"}')
    hook('{"hook_event_name": "PreToolUse", "tool_name": "Bash"}')
    time.sleep(0.3)
    assert bell_flag() == "0"
    hook('{"hook_event_name": "PermissionRequest", "tool_name": "Bash"}')
    assert retry_until(lambda: bell_flag() == "1", 5), bell_flag()


def test_the_real_claude_code_reports_its_session_start_through_the_managed_hooks(
    engine: InnerEngine, parent_layout: ParentLayout, projects: Projects
) -> None:
    c = start(engine, parent_layout, projects.make("real"))
    reports = parent_layout.worker_reports(str(c.labels[labels.SESSION]))
    watcher = ReportWatcher(parent_layout, lambda r: None)
    events: list[HookEvent] = []

    def reported() -> bool:  # a report being written is a temp file the scan leaves alone
        events.extend(e for r in watcher.scan() for e in r.events)
        return bool(events)

    assert retry_until(reported, 30), (
        os.listdir(reports),
        sh(c, f"tmux -S {SOCK} capture-pane -p -t =agent:")[1],
    )
    assert events[0].event == "SessionStart", events
    assert events[0].session_id is not None
