"""A local stand-in for the Anthropic Messages API, for driving real Claude Code turns in
tests. Test infrastructure only: never a product default.

    with MessagesAPI("127.0.0.1", script=[Text("hi"), ToolUse("Bash", {"command": "touch /tmp/x"}),
                                         Text("done")]) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": TEST_KEY}
        ...
        api.wait_for(lambda reqs: len(main(reqs)) >= 2)
        api.requests  # every request, in order, with its JSON body

A threaded HTTP server on an address the caller picks: loopback, or one of this machine's
own addresses (a bridge's gateway, which workers on that network reach); never a wildcard.

It serves `POST /v1/messages` (with or without `?beta=true`), streaming (`"stream": true`:
Server-Sent Events exactly as the API sends them: `message_start`, `content_block_start`,
`ping`, `content_block_delta`…, `content_block_stop`, `message_delta` with the stop reason,
`message_stop`) or not (one JSON message). Which reply a request gets is deterministic:
- a *main* request (one that offers tools: the conversation, a subagent) takes the next step
  of the script, in order; when the script is used up it gets `exhausted` (a plain text);
- a *side* request (no tools: title or topic generation, a quota probe) gets `side_text`.
`POST /v1/messages/count_tokens` answers a token count; any other request an empty JSON
object (HEAD/GET probes), so nothing Claude Code asks at start fails.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# A syntactically valid API key for the stand-in (Claude Code checks the shape, never the
# value: nothing reaches Anthropic). Its last 20 characters are what ~/.claude.json's
# `customApiKeyResponses.approved` lists to pre-approve it.
TEST_KEY = "sk-ant-api03-" + "halstandin" * 9 + "-hal9000AA"

DEFAULT_SIDE_TEXT = "Stand-in"  # titles, topics: short, harmless
DEFAULT_EXHAUSTED = "(the stand-in's script is used up)"


@dataclass(frozen=True)
class Text:
    """A reply of one text block; the turn ends (`end_turn`)."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """A reply that calls a tool (`tool_use`), after an optional text block."""

    name: str
    input: dict[str, Any]
    text: str = ""
    id: str = ""  # the tool_use id; made up (toolu_standin_N) when empty


Step = Text | ToolUse


@dataclass(frozen=True)
class Request:
    """One request the stand-in received, as it came."""

    method: str
    path: str  # with its query string
    headers: dict[str, str]  # lower-case names
    body: Any  # the parsed JSON body; None when there was none or it was not JSON
    kind: str  # "main" (took a script step), "side", "count_tokens" or "other"
    step: int | None = None  # the index of the script step it got (main requests)
    at: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[dict[str, Any]]:
        msgs = self.body.get("messages") if isinstance(self.body, dict) else None
        return list(msgs) if isinstance(msgs, list) else []

    def texts(self) -> list[str]:
        """Every text the request's messages hold (user and assistant, text and tool
        results), in order: what a test searches for an earlier turn."""
        return list(_texts(self.messages))


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key in ("content", "text"):
            if key in value:
                yield from _texts(value[key])


def main_requests(requests: Sequence[Request]) -> list[Request]:
    return [r for r in requests if r.kind == "main"]


def check_host(host: str) -> str:
    """`host` if it is a loopback address or one of this machine's own (binding proves the
    latter); never a wildcard or a name."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the stand-in binds an IP address, not {host!r}") from None
    if addr.is_unspecified or addr.is_multicast:
        raise ValueError(f"the stand-in never binds {host}: loopback or a local address only")
    return host


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event as the Messages API writes it."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunks(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class MessagesAPI:
    """The stand-in; a context manager (`with MessagesAPI(...) as api`). See the module."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Sequence[Step] = (),
        *,
        side_text: str = DEFAULT_SIDE_TEXT,
        exhausted: str = DEFAULT_EXHAUSTED,
        delay: float = 0.0,
    ) -> None:
        self.host = check_host(host)
        self._script: list[Step] = list(script)
        self.side_text = side_text
        self.exhausted = exhausted
        self.delay = delay  # seconds between streamed events: lets a test see "working"
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[Request] = []
        self._next = 0
        self._ids = itertools.count(1)
        self._server = _server(self, host, port)
        self._thread: threading.Thread | None = None

    # -- the caller's side -----------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """ANTHROPIC_BASE_URL for Claude Code (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def used(self) -> int:
        """How many script steps main requests have taken."""
        with self._lock:
            return self._next

    def extend(self, steps: Sequence[Step]) -> None:
        """Add steps to the script (for the next main requests)."""
        with self._lock:
            self._script.extend(steps)

    def wait_for(
        self, predicate: Callable[[list[Request]], bool], timeout: float = 30.0
    ) -> list[Request]:
        """Block until `predicate(requests)` holds; the requests then. TimeoutError after
        `timeout` seconds, naming what came."""
        end = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._requests)):
                left = end - time.monotonic()
                if left <= 0:
                    seen = [(r.method, r.path, r.kind) for r in self._requests]
                    raise TimeoutError(f"the stand-in saw only {seen}")
                self._changed.wait(left)
            return list(self._requests)

    def start(self) -> MessagesAPI:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
            name=f"messages-api-{self.port}",
        )  # fmt: skip
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> MessagesAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the server's side -----------------------------------------------------------------

    def _record(self, req: Request) -> None:
        with self._changed:
            self._requests.append(req)
            self._changed.notify_all()

    def _choose(self, body: Any) -> tuple[str, Step, int | None]:
        """(kind, step, index): main requests take the script in order."""
        tools = body.get("tools") if isinstance(body, dict) else None
        if not tools:
            return "side", Text(self.side_text), None
        with self._lock:
            index = self._next
            self._next += 1
            step = self._script[index] if index < len(self._script) else Text(self.exhausted)
            return "main", step, index

    def _blocks(self, step: Step) -> tuple[list[dict[str, Any]], str]:
        """The content blocks of a reply and its stop reason."""
        if isinstance(step, Text):
            return [{"type": "text", "text": step.text}], "end_turn"
        blocks: list[dict[str, Any]] = []
        if step.text:
            blocks.append({"type": "text", "text": step.text})
        tool_id = step.id or f"toolu_standin_{next(self._ids):06d}"
        blocks.append({"type": "tool_use", "id": tool_id, "name": step.name, "input": step.input})
        return blocks, "tool_use"

    def reply(self, body: Any) -> tuple[str, int | None, list[bytes] | dict[str, Any]]:
        """(kind, step index, the reply): SSE events when the body asks to stream, else
        one message."""
        kind, step, index = self._choose(body)
        blocks, stop = self._blocks(step)
        model = body.get("model") if isinstance(body, dict) else None
        msg_id = f"msg_standin_{next(self._ids):06d}"
        usage_in = max(1, len(json.dumps(body)) // 4)
        usage_out = max(1, len(json.dumps(blocks)) // 4)
        message: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) else "claude-standin",
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage_in,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": usage_out,
            },
        }
        if not (isinstance(body, dict) and body.get("stream")):
            return kind, index, message
        start = dict(message, content=[], stop_reason=None)
        start["usage"] = dict(message["usage"], output_tokens=1)
        events = [sse("message_start", {"type": "message_start", "message": start})]
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                first: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"])]
            else:
                first = {**block, "input": {}}
                raw = json.dumps(block["input"], separators=(",", ":"))
                deltas = [{"type": "input_json_delta", "partial_json": c} for c in _chunks(raw)]
            events.append(
                sse("content_block_start", {"type": "content_block_start", "index": i,
                                            "content_block": first})
            )  # fmt: skip
            if i == 0:
                events.append(sse("ping", {"type": "ping"}))
            events += [
                sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                            "delta": d})
                for d in deltas
            ]  # fmt: skip
            events.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(
            sse("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": stop, "stop_sequence": None},
                                  "usage": {"output_tokens": usage_out}})
        )  # fmt: skip
        events.append(sse("message_stop", {"type": "message_stop"}))
        return kind, index, events


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: MessagesAPI


def _server(api: MessagesAPI, host: str, port: int) -> _Server:
    v6 = ":" in host

    class Server(_Server):
        address_family = socket.AF_INET6 if v6 else socket.AF_INET

    server = Server((host, port), _Handler)
    server.api = api
    return server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the requests are recorded

    def _body(self) -> tuple[bytes, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return raw, json.loads(raw) if raw else None
        except ValueError:
            return raw, None

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _json(self, status: int, payload: Any, head: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_standin")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _other(self, head: bool = False) -> None:
        _raw, body = self._body()
        api = self.server.api
        api._record(Request(self.command, self.path, self._headers(), body, "other"))
        self._json(HTTPStatus.OK, {}, head)

    def do_GET(self) -> None:
        self._other()

    def do_HEAD(self) -> None:
        self._other(head=True)

    def do_POST(self) -> None:
        api = self.server.api
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/v1/messages/count_tokens":
            raw, body = self._body()
            api._record(Request(self.command, self.path, self._headers(), body, "count_tokens"))
            self._json(HTTPStatus.OK, {"input_tokens": max(1, len(raw) // 4)})
            return
        if path != "/v1/messages":
            self._other()
            return
        _raw, body = self._body()
        kind, index, reply = api.reply(body)
        api._record(Request(self.command, self.path, self._headers(), body, kind, index))
        if isinstance(reply, dict):
            self._json(HTTPStatus.OK, reply)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", "req_standin")
        self.send_header("Connection", "close")  # the stream ends with the connection
        self.end_headers()
        self.close_connection = True
        try:
            for event in reply:
                self.wfile.write(event)
                self.wfile.flush()
                if api.delay:
                    time.sleep(api.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (Escape, kill): nothing to tell it
