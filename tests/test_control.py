"""The loop's control socket: the pure protocol, and a real unix socket served to a stand-in
loop (a thread that answers what the server hands it, as the agent loop does)."""

from __future__ import annotations

import os
import queue
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hal_common.errors import EXIT_LOOP, LoopUnavailable
from hal_common.layout import ParentLayout
from parent_agent.adapters.control import ControlServer, Reply, ask
from parent_agent.core.control import (
    MAX_BYTES,
    Answer,
    ReconcileServices,
    Request,
    RestartServices,
    encode_answer,
    encode_request,
    parse_answer,
    parse_request,
)


def test_requests_and_answers_round_trip() -> None:
    for req in (ReconcileServices(), RestartServices(("a", "b"))):
        assert parse_request(encode_request(req)) == req
    assert (
        encode_request(RestartServices(("x",))) == b'{"op": "services.restart", "names": ["x"]}\n'
    )
    for answer in (Answer(True, errors=("e",)), Answer(False, "why", ("e", "f"))):
        assert parse_answer(encode_answer(answer)) == answer
    assert encode_answer(Answer(True)) == b'{"ok": true, "errors": []}\n'


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"nope", "not a JSON object"),
        (b"[1]", "not a JSON object"),
        (b'{"op": "rm -rf"}', "unknown op 'rm -rf'"),
        (b'{"op": "services.restart"}', "names must be a non-empty list"),
        (b'{"op": "services.restart", "names": [1]}', "names must be a non-empty list"),
        (b'{"op": "services.restart", "names": []}', "names must be a non-empty list"),
        (b"\xff", "not a JSON object"),
        (b" " * (MAX_BYTES + 1), "more than"),
    ],
)
def test_bad_requests_say_why(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_request(data)


@pytest.fixture
def sock_path() -> Iterator[Path]:
    short = Path(f"/tmp/hc-{uuid.uuid4().hex[:8]}")  # unix socket paths are short
    short.mkdir()
    yield short / "control.sock"
    for p in short.iterdir():
        p.unlink()
    short.rmdir()


class StandInLoop:
    """Takes requests off an inbox like the agent loop and answers from a script."""

    def __init__(self, path: Path) -> None:
        self.inbox: queue.Queue[tuple[Request, Reply]] = queue.Queue()
        self.server = ControlServer(path, lambda req, reply: self.inbox.put((req, reply)))

    def answer_next(self, answer: Answer) -> Request:
        req, reply = self.inbox.get(timeout=5)
        reply.answer(answer)
        return req


def test_a_request_reaches_the_loop_and_its_answer_comes_back(sock_path: Path) -> None:
    loop = StandInLoop(sock_path)
    loop.server.start()
    try:
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600
        got: list[Answer] = []
        asker = threading.Thread(
            target=lambda: got.append(ask(sock_path, RestartServices(("memory-bank",)), 10))
        )
        asker.start()
        req = loop.answer_next(Answer(False, "service memory-bank: gone", ("x",)))
        asker.join(10)
        assert req == RestartServices(("memory-bank",))
        assert got == [Answer(False, "service memory-bank: gone", ("x",))]
        # a bad request is answered by the server itself: the loop never sees it
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(sock_path))
            s.sendall(b'{"op": "services.restart", "names": "all"}\n')
            reply = parse_answer(s.recv(4096))
        assert not reply.ok and reply.error.startswith("bad request: names must be")
        assert loop.inbox.empty()
        # the next request is served as well
        asker = threading.Thread(target=lambda: got.append(ask(sock_path, ReconcileServices(), 10)))
        asker.start()
        assert loop.answer_next(Answer(True, errors=("e",))) == ReconcileServices()
        asker.join(10)
        assert got[-1] == Answer(True, errors=("e",))
    finally:
        loop.server.stop()
    assert not sock_path.exists()


def test_a_request_pending_at_shutdown_is_answered_so(sock_path: Path) -> None:
    loop = StandInLoop(sock_path)
    loop.server.start()
    got: list[Answer] = []
    asker = threading.Thread(target=lambda: got.append(ask(sock_path, ReconcileServices(), 10)))
    asker.start()
    loop.inbox.get(timeout=5)  # taken, never answered
    loop.server.stop()
    asker.join(10)
    assert got == [Answer(False, "the parent is shutting down")]
    assert not [t for t in threading.enumerate() if t.name == "control"]


def test_no_loop_is_a_clear_error_with_its_exit_code(
    sock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LoopUnavailable, match="the parent's loop is not running") as e:
        ask(sock_path, ReconcileServices(), 2)
    assert e.value.exit_code == EXIT_LOOP == 4
    # a stale socket file from a crashed loop: nothing listens
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(sock_path))
    with pytest.raises(LoopUnavailable, match="not running"):
        ask(sock_path, ReconcileServices(), 2)
    from parent_agent.commands.cli import main

    env = {"HAL_RUN_DIR": str(sock_path.parent)}  # the layout's control socket is sock_path
    result = CliRunner().invoke(main, ["services", "--restart", "chroma-mcp"], env=env)
    assert result.exit_code == 4, result.output
    assert "hal-agent: the parent's loop is not running" in result.output


def test_the_loop_decides_what_a_request_does_and_answers_with_the_runners_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent loop's side, without engines: the runner's jobs are recorded, not run."""
    from hal_common.config import parse_config
    from hal_common.layout import ParentLayout
    from parent_agent.app import service_runner
    from parent_agent.app.agent import Agent
    from parent_agent.app.events import ControlRequest

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


def test_the_service_runner_runs_one_job_at_a_time_and_reports_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs never overlap; each result goes back to the loop; jobs left at shutdown are
    answered, not run. (`run` is replaced: what a job does is the engine tests' part.)"""
    from parent_agent.app import service_runner
    from parent_agent.core.services import ServicePlan

    done: queue.Queue[service_runner.ServicesDone] = queue.Queue()
    runner = service_runner.ServiceRunner(done.put, ParentLayout(run_dir=tmp_path))
    started: queue.Queue[str] = queue.Queue()
    release = threading.Event()
    active: list[int] = [0]

    def run(job: service_runner.Job) -> service_runner.ServicesDone:
        active[0] += 1
        assert active[0] == 1, "two jobs at once"
        started.put("x")
        release.wait(5)
        active[0] -= 1
        return service_runner.ServicesDone(job, ("e",))

    monkeypatch.setattr(runner, "run", run)
    runner.start()
    engine = object()
    first = service_runner.ApplyServices(engine, ServicePlan())  # type: ignore[arg-type]
    second = service_runner.ApplyServices(engine, ServicePlan())  # type: ignore[arg-type]
    runner.submit(first)
    runner.submit(second)
    started.get(timeout=5)
    assert started.empty()  # the second waits for the first
    release.set()
    assert done.get(timeout=5).job is first and done.get(timeout=5).job is second
    started.get(timeout=5)  # the second's start
    release.clear()
    runner.submit(first)
    started.get(timeout=5)
    reply = Reply()
    runner.submit(service_runner.ApplyServices(engine, ServicePlan(), reply))  # type: ignore[arg-type]
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    assert runner._stopping.wait(5)  # stopping before the first job ends: the rest is dropped
    release.set()
    stopper.join(10)
    assert reply.wait(1, threading.Event()) == Answer(False, "the parent is shutting down")
    assert done.get(timeout=5).job is first and done.empty()
    assert not [t for t in threading.enumerate() if t.name == "services"]
