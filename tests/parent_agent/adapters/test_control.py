"""The loop's control socket: a real unix socket served to a stand-in loop (a thread that
answers what the server hands it, as the agent loop does), and `hal-agent` when no loop
listens."""

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
from parent_agent.adapters.control import ControlServer, Reply, ask
from parent_agent.core.control import (
    Answer,
    ReconcileServices,
    Request,
    RestartServices,
    parse_answer,
)


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
