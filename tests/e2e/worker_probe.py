"""A client run *inside* a worker (python3 of the standard image, standard library only).

    python3 worker_probe.py mcp URL TOOL JSON-ARGS   one MCP session: initialize, call a tool
    python3 worker_probe.py tools URL                the tool names a server offers
    python3 worker_probe.py chroma METHOD PATH [JSON] ChromaDB's REST API, with the token the
                                                      parent shares in $CLAUDE_CONFIG_DIR
    python3 worker_probe.py chroma-noauth METHOD PATH the same without the token

It speaks MCP's streamable HTTP transport (JSON-RPC over POST; replies as JSON or as an SSE
stream) the way any MCP client does. Prints a JSON result on stdout; exits 1 on failure.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

PROTOCOL = "2025-03-26"
GATE = "10.213.213.1"  # hal_common.egress.GATEWAY: where workers reach the services


def _post(
    url: str, body: dict[str, Any], session: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    bearer = _token()
    if bearer:  # the gate in front of every service wants it
        headers["Authorization"] = "Bearer " + bearer
    if session:
        headers["Mcp-Session-Id"] = session
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - http://127.0.0.1 only
        sid = resp.headers.get("Mcp-Session-Id") or session
        kind = resp.headers.get("Content-Type", "")
        raw = resp.read().decode()
    if "id" not in body:
        return None, sid
    if kind.startswith("text/event-stream"):
        for line in raw.splitlines():
            if line.startswith("data:"):
                msg = json.loads(line[5:].strip())
                if msg.get("id") == body["id"]:
                    return msg, sid
        raise SystemExit(f"no reply to {body['method']} in the event stream: {raw[:300]}")
    return json.loads(raw), sid


def mcp_session(url: str) -> str | None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "hal-probe", "version": "1"},
        },
    }
    reply, sid = _post(url, init, None)
    assert reply is not None and "result" in reply, reply
    _post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    return sid


def call(url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    sid = mcp_session(url)
    reply, _ = _post(url, {"jsonrpc": "2.0", "id": 2, "method": method, "params": params}, sid)
    assert reply is not None
    if "error" in reply:
        raise SystemExit(f"{method}: {reply['error']}")
    result: dict[str, Any] = reply["result"]
    return result


def _token() -> str:
    """The services' bearer token as the worker was given it (beside its Claude state)."""
    home = os.environ.get("CLAUDE_CONFIG_DIR", os.path.expanduser("~/.claude"))
    try:
        with open(os.path.join(home, ".hal-chroma-token")) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def chroma(method: str, path: str, body: str | None, token: bool) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + _token()
    port = os.environ.get("HAL_CHROMA_PORT", "8000")
    data = body.encode() if body else None
    url = f"http://{GATE}:{port}{path}"  # the service's gate on the workers' gateway
    req = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - localhost
            return {"status": resp.status, "body": json.loads(resp.read() or b"null")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode(errors="replace")[:300]}


def main(argv: list[str]) -> None:
    what = argv[1]
    if what == "mcp":
        result = call(argv[2], "tools/call", {"name": argv[3], "arguments": json.loads(argv[4])})
        text = " ".join(c.get("text", "") for c in result.get("content", []))
        print(json.dumps({"isError": result.get("isError", False), "text": text}))
    elif what == "tools":
        result = call(argv[2], "tools/list", {})
        print(json.dumps(sorted(t["name"] for t in result["tools"])))
    elif what in ("chroma", "chroma-noauth"):
        body = argv[4] if len(argv) > 4 else None
        print(json.dumps(chroma(argv[2], argv[3], body, token=what == "chroma")))
    else:
        raise SystemExit(f"unknown: {what}")


if __name__ == "__main__":
    main(sys.argv)
