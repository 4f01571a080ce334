"""The loop's control protocol, pure: typed requests and answers, and their wire form.

One JSON object per direction per connection on the control socket (`ParentLayout.control_socket`),
each at most `MAX_BYTES`, ended by a newline (or the end of the stream):

    request  {"op": "services.reconcile"}
             {"op": "services.restart", "names": ["chroma-mcp", ...]}
    answer   {"ok": true, "errors": ["..."]}        done; `errors`: what went wrong on the way
             {"ok": false, "error": "...", "errors": [...]}   refused or failed: why
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BYTES = 64 * 1024
RECONCILE = "services.reconcile"
RESTART = "services.restart"


@dataclass(frozen=True)
class ReconcileServices:
    """Make the service containers match the config now (e.g. their image just arrived)."""


@dataclass(frozen=True)
class RestartServices:
    """Restart these services (made anew when missing)."""

    names: tuple[str, ...]


Request = ReconcileServices | RestartServices


@dataclass(frozen=True)
class Answer:
    ok: bool
    error: str = ""
    errors: tuple[str, ...] = ()


def encode_request(req: Request) -> bytes:
    doc: dict[str, Any] = (
        {"op": RESTART, "names": list(req.names)}
        if isinstance(req, RestartServices)
        else {"op": RECONCILE}
    )
    return json.dumps(doc).encode() + b"\n"


def _object(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_BYTES:
        raise ValueError(f"more than {MAX_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a JSON object") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def parse_request(data: bytes) -> Request:
    """A request from its wire form; ValueError says what is wrong with it."""
    doc = _object(data)
    op = doc.get("op")
    if op == RECONCILE:
        return ReconcileServices()
    if op == RESTART:
        names = doc.get("names")
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise ValueError("names must be a non-empty list of service names")
        return RestartServices(tuple(names))
    raise ValueError(f"unknown op {op!r}")


def encode_answer(answer: Answer) -> bytes:
    doc: dict[str, Any] = {"ok": answer.ok, "errors": list(answer.errors)}
    if not answer.ok:
        doc["error"] = answer.error
    return json.dumps(doc).encode() + b"\n"


def parse_answer(data: bytes) -> Answer:
    """An answer from its wire form; ValueError when it is not one."""
    doc = _object(data)
    ok, errors = doc.get("ok"), doc.get("errors", [])
    if not isinstance(ok, bool) or not isinstance(errors, list):
        raise ValueError("not an answer")
    return Answer(ok, str(doc.get("error", "")), tuple(str(e) for e in errors))
