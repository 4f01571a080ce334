"""The loop's control protocol, pure: requests and answers through their bytes, and what a
bad request is told."""

from __future__ import annotations

import pytest

from parent_agent.core.control import (
    MAX_BYTES,
    Answer,
    ReconcileServices,
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
