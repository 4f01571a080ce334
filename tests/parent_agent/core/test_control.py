"""The loop's control protocol, pure: requests and answers through their bytes, and what a
bad request is told."""

from __future__ import annotations

import pytest

from parent_agent.core.control import (
    MAX_BYTES,
    Answer,
    ReconcileServices,
    RestartServices,
    SpawnWorker,
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


def test_a_spawn_and_its_answers_round_trip() -> None:
    env = (("HOME", "/root"), ("TERM", "xterm"))
    for req in (
        SpawnWorker("/p"),
        SpawnWorker(
            "/p", window=False, client="/dev/pts/1", name="n", image="i", image_id="x", env=env
        ),
    ):
        assert parse_request(encode_request(req)) == req
    for answer in (
        Answer(True, value="p-1", notes=("careful",), hold=True),
        Answer(False, "refused\n  hint: do this", notes=("w",), code=2),
        Answer(False, "busy", fallback=True),
    ):
        assert parse_answer(encode_answer(answer)) == answer
    # an answer from before these fields reads as it did
    assert parse_answer(b'{"ok": false, "error": "x", "errors": []}') == Answer(False, "x")


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
        (b'{"op": "workers.spawn"}', "directory must be an absolute path"),
        (b'{"op": "workers.spawn", "directory": "p"}', "directory must be an absolute path"),
        (b'{"op": "workers.spawn", "directory": ["/p"]}', "must be strings"),
        (b'{"op": "workers.spawn", "directory": "/p", "window": 1}', "window must be"),
        (b'{"op": "workers.spawn", "directory": "/p", "env": {"A": 1}}', "env must be"),
        (b'{"op": "workers.spawn", "directory": "/p", "env": ["A=1"]}', "env must be"),
    ],
)
def test_bad_requests_say_why(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_request(data)
