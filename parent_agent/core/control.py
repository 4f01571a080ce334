"""The loop's control protocol, pure: typed requests and answers, and their wire form.

One JSON object per direction per connection on the control socket (`ParentLayout.control_socket`),
each at most `MAX_BYTES`, ended by a newline (or the end of the stream):

    request  {"op": "services.reconcile"}
             {"op": "services.restart", "names": ["chroma-mcp", ...]}
             {"op": "workers.spawn", "directory": "/abs/dir", "window": true, "client": "",
              "name": "", "image": "", "image_id": "", "env": {"NAME": "value", ...}}
    answer   {"ok": true, "errors": ["..."]}        done; `errors`: what went wrong on the way
             {"ok": false, "error": "...", "errors": [...]}   refused or failed: why
             and, only when not their defaults: "value" (a spawn: the session name), "notes"
             (warnings to show), "hold" (hold the terminal on the last note before attaching),
             "code" (a refusal's exit code), "fallback" (not done: the command does it itself)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BYTES = 64 * 1024
RECONCILE = "services.reconcile"
RESTART = "services.restart"
SPAWN = "workers.spawn"


@dataclass(frozen=True)
class ReconcileServices:
    """Make the service containers match the config now (e.g. their image just arrived)."""


@dataclass(frozen=True)
class RestartServices:
    """Restart these services (made anew when missing)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class SpawnWorker:
    """Start (or reuse) the worker of `directory` as `hal-agent spawn` does, in the loop's
    process, which has docker-py, libtmux and the config's parser loaded already: the
    command's side is a Python start-up with built-in modules (commands/quick.py).
    `window`: its tmux window too; `client`: show it on that tmux client (a key ran the
    command); `env`: the command's environment (`[worker].env` names are taken from it)."""

    directory: str
    window: bool = True
    client: str = ""
    name: str = ""
    image: str = ""
    image_id: str = ""
    env: tuple[tuple[str, str], ...] = ()


Request = ReconcileServices | RestartServices | SpawnWorker


@dataclass(frozen=True)
class Answer:
    ok: bool
    error: str = ""
    errors: tuple[str, ...] = ()
    value: str = ""  # a spawn's session name
    notes: tuple[str, ...] = ()  # warnings the command shows (its own log would have)
    hold: bool = False  # hold the terminal on the last note before attaching (see warn)
    code: int = 0  # a refusal's exit code (0: the usual one, 1)
    fallback: bool = False  # not done here: the command does it itself (needs its terminal)


SPAWN_TEXT = ("directory", "client", "name", "image", "image_id")


def encode_request(req: Request) -> bytes:
    doc: dict[str, Any]
    if isinstance(req, RestartServices):
        doc = {"op": RESTART, "names": list(req.names)}
    elif isinstance(req, SpawnWorker):
        doc = {"op": SPAWN, "window": req.window, "env": dict(req.env)}
        doc.update({k: getattr(req, k) for k in SPAWN_TEXT})
    else:
        doc = {"op": RECONCILE}
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
    if op == SPAWN:
        return _spawn(doc)
    raise ValueError(f"unknown op {op!r}")


def _spawn(doc: dict[str, Any]) -> SpawnWorker:
    text = {k: doc.get(k, "") for k in SPAWN_TEXT}
    if not all(isinstance(v, str) for v in text.values()):
        raise ValueError(f"{', '.join(SPAWN_TEXT)} must be strings")
    if not text["directory"].startswith("/"):
        raise ValueError("directory must be an absolute path")
    env, window = doc.get("env", {}), doc.get("window", True)
    if not isinstance(window, bool):
        raise ValueError("window must be true or false")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValueError("env must be an object of strings")
    return SpawnWorker(window=window, env=tuple(sorted(env.items())), **text)


def encode_answer(answer: Answer) -> bytes:
    doc: dict[str, Any] = {"ok": answer.ok, "errors": list(answer.errors)}
    if not answer.ok:
        doc["error"] = answer.error
    extra = {"value": answer.value, "notes": list(answer.notes), "hold": answer.hold}
    extra.update(code=answer.code, fallback=answer.fallback)
    doc.update({k: v for k, v in extra.items() if v})
    return json.dumps(doc).encode() + b"\n"


def parse_answer(data: bytes) -> Answer:
    """An answer from its wire form; ValueError when it is not one."""
    doc = _object(data)
    ok, errors, notes = doc.get("ok"), doc.get("errors", []), doc.get("notes", [])
    code = doc.get("code", 0)
    if not isinstance(ok, bool) or not isinstance(errors, list) or not isinstance(notes, list):
        raise ValueError("not an answer")
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code < 256:
        raise ValueError("not an answer")
    return Answer(
        ok,
        str(doc.get("error", "")),
        tuple(str(e) for e in errors),
        value=str(doc.get("value", "")),
        notes=tuple(str(n) for n in notes),
        hold=doc.get("hold") is True,
        code=code,
        fallback=doc.get("fallback") is True,
    )
