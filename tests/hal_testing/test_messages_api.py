"""The Messages API stand-in: its wire format and script rule with a plain HTTP client, then
real turns of the real Claude Code (the worker image's binary) against it in a private tmux."""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path
from typing import Any

import docker
import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_testing import claude as hal_claude
from hal_testing.messages_api import (
    DEFAULT_EXHAUSTED,
    TEST_KEY,
    MessagesAPI,
    Request,
    Step,
    Text,
    ToolUse,
    check_host,
    main_requests,
)

TOOLS = [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]


def post(api: MessagesAPI, body: dict[str, Any], path: str = "/v1/messages") -> tuple[int, str]:
    conn = http.client.HTTPConnection(api.host, api.port, timeout=10)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read().decode()
    conn.close()
    return resp.status, data


def events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each Server-Sent Event, checking each is `event:` then `data:`."""
    out = []
    for chunk in raw.split("\n\n"):
        if not chunk:
            continue
        event, data = chunk.split("\n")
        assert event.startswith("event: ") and data.startswith("data: "), chunk
        payload = json.loads(data.removeprefix("data: "))
        assert payload["type"] == event.removeprefix("event: ")
        out.append((payload["type"], payload))
    return out


def turn(messages: str = "hi", tools: bool = True, stream: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-x", "max_tokens": 100, "stream": stream,
                            "messages": [{"role": "user", "content": messages}]}  # fmt: skip
    if tools:
        body["tools"] = TOOLS
    return body


def test_a_streamed_text_reply_has_the_apis_events_in_order() -> None:
    with MessagesAPI("127.0.0.1", script=[Text("Hello there, this is longer than a chunk")]) as api:
        status, raw = post(api, turn(), "/v1/messages?beta=true")
    assert status == 200
    got = events(raw)
    kinds = [k for k, _ in got]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-4:] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = got[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["model"] == "claude-x"
    assert start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    assert got[1][1]["content_block"] == {"type": "text", "text": ""}
    text = "".join(d["delta"]["text"] for k, d in got if k == "content_block_delta")
    assert text == "Hello there, this is longer than a chunk"
    assert got[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_a_tool_use_streams_its_input_as_json_deltas() -> None:
    step = ToolUse("Bash", {"command": "touch /tmp/x", "description": "touch"}, text="On it.")
    with MessagesAPI("127.0.0.1", script=[step]) as api:
        _status, raw = post(api, turn())
    got = events(raw)
    starts = [d["content_block"] for k, d in got if k == "content_block_start"]
    assert starts[0] == {"type": "text", "text": ""}
    assert starts[1]["type"] == "tool_use" and starts[1]["name"] == "Bash"
    assert starts[1]["input"] == {} and starts[1]["id"].startswith("toolu_")
    partial = "".join(
        d["delta"]["partial_json"] for k, d in got if k == "content_block_delta" and d["index"] == 1
    )
    assert json.loads(partial) == step.input
    assert [d["index"] for k, d in got if k == "content_block_stop"] == [0, 1]
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_main_requests_take_the_script_in_order_and_side_requests_do_not() -> None:
    script: list[Step] = [
        Text("one"),
        ToolUse("Bash", {"command": "true"}, id="toolu_fixed"),
        Text("three"),
    ]
    with MessagesAPI("127.0.0.1", script=script, side_text="A title") as api:
        replies = [
            json.loads(post(api, turn(tools=tools, stream=False))[1])
            for tools in (True, False, True, True, True)
        ]
        seen = api.requests
    assert [r["content"][-1].get("text") or r["content"][-1].get("id") for r in replies] == [
        "one", "A title", "toolu_fixed", "three", DEFAULT_EXHAUSTED,
    ]  # fmt: skip
    assert [r["stop_reason"] for r in replies] == [
        "end_turn", "end_turn", "tool_use", "end_turn", "end_turn",
    ]  # fmt: skip
    assert [(r.kind, r.step) for r in seen] == [
        ("main", 0), ("side", None), ("main", 1), ("main", 2), ("main", 3),
    ]  # fmt: skip
    assert api.used == 4


def test_every_request_is_recorded_with_its_body() -> None:
    with MessagesAPI("127.0.0.1", script=[Text("a")]) as api:
        body = turn("remember the walrus")
        post(api, body)
        status, raw = post(api, {"messages": body["messages"]}, "/v1/messages/count_tokens")
        assert status == 200 and json.loads(raw)["input_tokens"] > 0
        conn = http.client.HTTPConnection(api.host, api.port, timeout=10)
        conn.request("HEAD", "/")
        assert conn.getresponse().status == 200
        conn.close()
        got = api.wait_for(lambda rs: len(rs) == 3, timeout=5)
    assert [(r.method, r.kind) for r in got] == [
        ("POST", "main"), ("POST", "count_tokens"), ("HEAD", "other"),
    ]  # fmt: skip
    assert got[0].body == body and got[0].headers["content-type"] == "application/json"
    assert "remember the walrus" in got[0].texts()
    assert main_requests(got) == [got[0]]


def test_wait_for_names_what_came_when_it_times_out() -> None:
    with MessagesAPI("127.0.0.1") as api, pytest.raises(TimeoutError, match="saw only"):
        api.wait_for(lambda rs: bool(rs), timeout=0.2)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "localhost", "example.com"])  # noqa: S104 (rejected)
def test_it_binds_no_wildcard_and_no_name(host: str) -> None:
    with pytest.raises(ValueError):
        check_host(host)
    assert check_host("127.0.0.1") == "127.0.0.1"


def test_extend_adds_steps_for_the_next_main_requests() -> None:
    with MessagesAPI("127.0.0.1") as api:
        api.extend([Text("later")])
        reply = json.loads(post(api, turn(stream=False))[1])
    assert reply["content"] == [{"type": "text", "text": "later"}]


# -- the real Claude Code ------------------------------------------------------------------


def claude_binary() -> Path:
    """The real `claude` the workers mount: the tests' shared store (seeded from the host
    cache by the `built_images` fixture)."""
    return Path(hal_claude.mount()[1])


def claude_home(config_dir: Path, project: Path, hook_log: Path) -> Path:
    """A fresh CLAUDE_CONFIG_DIR: onboarding done, the project trusted, the test key
    approved; and a settings file with a command hook for each event (no matcher) appending
    its payload to `hook_log`, and the plain permission mode (auto mode's classifier is
    server-side: with a stand-in it would ask about itself instead of the tool)."""
    config_dir.mkdir()
    state = {
        "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [TEST_KEY[-20:]], "rejected": []},
        "projects": {str(project): {"hasTrustDialogAccepted": True}},
    }
    (config_dir / ".claude.json").write_text(json.dumps(state))
    events = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest",
              "PostToolUse", "Notification", "Stop", "SessionEnd"]  # fmt: skip
    command = f"cat >> {hook_log}; echo >> {hook_log}"
    settings = {
        "permissions": {"defaultMode": "default"},
        "hooks": {e: [{"hooks": [{"type": "command", "command": command}]}] for e in events},
    }
    path = config_dir / "test-settings.json"
    path.write_text(json.dumps(settings))
    return path


def hook_events(log: Path) -> list[str]:
    if not log.exists():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [str(r["hook_event_name"]) for r in rows]


@pytest.mark.docker
@pytest.mark.tmux
def test_real_claude_code_runs_a_text_turn_and_an_approved_tool_turn(
    dclient: docker.DockerClient,
    built_images: dict[str, str],
    server: libtmux.Server,
    tmp_path: Path,
) -> None:
    claude = claude_binary()
    project = tmp_path / "project"
    project.mkdir()
    touched, hook_log = tmp_path / "touched", tmp_path / "hooks.jsonl"
    settings = claude_home(tmp_path / "config", project, hook_log)
    script: list[Step] = [
        Text("Hello from the stand-in."),
        ToolUse("Bash", {"command": f"touch {touched}", "description": "touch a file"}),
        Text("Touched it."),
    ]
    with MessagesAPI("127.0.0.1", script=script) as api:
        env = {
            "ANTHROPIC_BASE_URL": api.url,
            "ANTHROPIC_API_KEY": TEST_KEY,
            "CLAUDE_CONFIG_DIR": str(tmp_path / "config"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        session = server.new_session(
            "claude", x=160, y=45, start_directory=str(project), environment=env,
            window_command=f"{claude} --settings {settings}",
        )  # fmt: skip
        pane = session.active_window.active_pane
        assert pane is not None

        def screen() -> str:
            return "\n".join(pane.capture_pane())

        assert retry_until(lambda: "❯" in screen(), 30, raises=False), screen()
        pane.send_keys("say hello", enter=False, literal=True)
        pane.send_keys("Enter", enter=False)
        assert retry_until(lambda: "Hello from the stand-in." in screen(), 20, raises=False)
        assert retry_until(lambda: "Stop" in hook_events(hook_log), 10, raises=False)

        pane.send_keys("touch a file", enter=False, literal=True)
        pane.send_keys("Enter", enter=False)
        assert retry_until(lambda: "Do you want to proceed?" in screen(), 20, raises=False), (
            screen()
        )
        assert retry_until(lambda: "PermissionRequest" in hook_events(hook_log), 5, raises=False)
        assert not touched.exists()
        # keys in the first ~0.3 s of a permission dialog are dropped (measured: 0.1 s
        # ignored, 0.3 s taken); "1" picks "1. Yes", as Enter on the preselected Yes does
        time.sleep(1.0)
        pane.send_keys("1", enter=False)
        assert retry_until(lambda: "Touched it." in screen(), 20, raises=False), screen()
        assert touched.exists()
        assert retry_until(lambda: hook_events(hook_log).count("Stop") == 2, 10, raises=False)

        mains: list[Request] = main_requests(api.requests)
        assert [r.step for r in mains] == [0, 1, 2]
        assert "say hello" in mains[1].texts()  # the second turn carried the first
        assert "Hello from the stand-in." in mains[1].texts()
        tool_result = mains[2].messages[-1]["content"][0]
        assert tool_result["type"] == "tool_result"
        assert tool_result["tool_use_id"].startswith("toolu_standin_")
    # Notification (permission_prompt) comes only when the prompt waits ~6 s: not counted
    assert [e for e in hook_events(hook_log) if e != "Notification"] == [
        "SessionStart", "UserPromptSubmit", "Stop", "UserPromptSubmit", "PreToolUse",
        "PermissionRequest", "PostToolUse", "Stop",
    ]  # fmt: skip
