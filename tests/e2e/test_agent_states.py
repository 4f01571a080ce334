"""End to end: real turns of the real Claude Code in a real worker of a real parent, against a
local stand-in for the Messages API (these machines cannot reach Anthropic).

The stand-in listens on the test engine's bridge address (this machine's own), which the
parent reaches; workers reach it only through the parent's egress proxy, which lets it through
because the config's `[network] allow` names it. Claude Code is told the address by a literal
`[worker] env` entry and gets its API key from `claudy auth import --token-file`: test
infrastructure, never a product default.

One conversation, in order: a prompt sent with `hal-agent send` is `working`; the tool call
it brings needs permission: `waiting`, the notify command runs, the window is marked; approved
with `send`: `idle`; `kill -9` of claude: `exited 137`, notified; `docker restart` of the
parent brings the worker back by itself, and the conversation continues (the stand-in gets the
earlier turns in its next request).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import session_name
from hal_testing.engine import GID, UID
from hal_testing.host import HostParent
from hal_testing.messages_api import TEST_KEY, MessagesAPI, Text, ToolUse, main_requests
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

NOTIFY_LOG = "/data/notify.log"
PROMPT = "please touch the file named approved"


def bridge_gateway(dclient: docker.DockerClient) -> str:
    """The test engine's default bridge address: on this machine, reached by its containers."""
    ipam = dclient.networks.get("bridge").attrs["IPAM"]["Config"]
    return str(next(c["Gateway"] for c in ipam if "Gateway" in c and ":" not in c["Gateway"]))


@pytest.fixture(scope="module")
def api(dclient: docker.DockerClient) -> Iterator[MessagesAPI]:
    with MessagesAPI(bridge_gateway(dclient), delay=0.3) as found:
        yield found


@pytest.fixture(scope="module")
def s(host_parents: Callable[..., HostParent], api: MessagesAPI) -> HostParent:
    env = (
        f'env = {{ ANTHROPIC_BASE_URL = "{api.url}", '
        'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1", DISABLE_TELEMETRY = "1" }\n'
    )
    extra = (
        f'\n[network]\nallow = ["{api.host}:{api.port}"]\n'
        "\n[notify]\n"
        f'command = ["sh", "-c", "{{ env | grep ^HAL_ | sort; cat; }} >> {NOTIFY_LOG}"]\n'
        'on = ["waiting", "exited"]\ndebounce = 0.0\n'
    )
    parent = host_parents(
        "ag",
        worker='memory = "1g"\n' + env,
        extra=extra,
        home="home",
        env={"SUDO_UID": str(UID), "SUDO_GID": str(GID)},
    )
    # the classic permission prompt: Claude Code 2.1.332's default auto mode asks its server,
    # which the stand-in is not (a user setting, synced from the host's ~/.claude)
    claude = parent.home / ".claude"
    claude.mkdir()
    (claude / "settings.json").write_text('{"permissions": {"defaultMode": "default"}}\n')
    return parent


def agent(s: HostParent, name: str) -> dict[str, Any]:
    code, out = s.run(["hal-agent", "ls", "--json", "--all"])
    assert code == 0, out
    rows = json.loads(out)
    validate("ls", rows)
    row = next((r for r in rows if r["name"] == name), None)
    return dict((row or {}).get("agent") or {})


def wait_agent(s: HostParent, name: str, check: Callable[[dict[str, Any]], bool], t: float) -> None:
    seen: list[dict[str, Any]] = []

    def ok() -> bool:
        try:
            seen.append(agent(s, name))
        except Exception:  # noqa: BLE001 - the parent restarting: not yet
            return False
        return check(seen[-1])

    assert retry_until(ok, t, interval=0.1, raises=False), (seen[-3:], s.logs(40))


def notified(s: HostParent) -> str:
    _code, out = s.run(["sh", "-c", f"cat {NOTIFY_LOG} 2>/dev/null || true"])
    return out


def send(s: HostParent, name: str, *args: str) -> None:
    code, out = s.run(["hal-agent", "send", name, *args])
    assert code == 0, out


def test_a_conversation_is_seen_answered_survives_a_kill_and_a_parent_restart(
    s: HostParent, api: MessagesAPI, tmp_path: Path
) -> None:
    # the parent, then the key (over stdin), then the project's worker: logged in at start
    boot = s.claudy("-d", str(s.project("boot")))
    assert boot.returncode == 0, boot.stderr
    key = tmp_path / "key"
    key.write_text(TEST_KEY + "\n")
    res = s.claudy("auth", "import", "--token-file", str(key))
    assert res.returncode == 0, res.stderr
    proj = s.project("talk")
    name = session_name(str(proj))
    api.extend([ToolUse("Bash", {"command": f"touch {proj}/approved"}), Text("Touched it.")])
    res = s.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    wait_agent(s, name, lambda a: a.get("state") == "idle" and bool(a.get("session_id")), 60)
    first_id = agent(s, name)["session_id"]

    # 1. a prompt, typed with `claudy send`: working
    res = s.claudy("send", name, PROMPT)
    assert res.returncode == 0, res.stderr + res.stdout
    wait_agent(s, name, lambda a: a.get("state") in ("working", "waiting"), 20)

    # 2. the tool call needs permission: waiting; notified with its name; the window marked
    wait_agent(s, name, lambda a: a.get("state") == "waiting", 30)
    assert "Bash" in agent(s, name)["reason"]
    assert retry_until(lambda: f"HAL_SESSION={name}" in notified(s), 10, raises=False), notified(s)
    assert "HAL_STATE=waiting" in notified(s)
    _code, mark = s.tmux("show-options", "-wqv", "-t", f"=hal:={name}", "@hal_agent")
    assert mark.strip() == "waiting", mark

    # 3. approved with `send` at once (it waits out the dialog's first moments, in which
    # Claude Code drops keys): idle, the tool ran
    send(s, name, "--key", "Enter")
    wait_agent(s, name, lambda a: a.get("state") == "idle", 30)
    assert (proj / "approved").exists()
    assert any("Touched it." in json.dumps(r.body) for r in api.requests) or api.used >= 2

    # 4. kill -9 of claude: exited 137, notified
    s.in_worker(proj, "sh", "-c", "kill -9 $(hal-worker pid)")
    wait_agent(s, name, lambda a: a.get("state") == "exited" and a.get("exit_code") == 137, 30)
    assert retry_until(lambda: "HAL_STATE=exited" in notified(s), 10, raises=False), notified(s)

    # 5. docker restart of the parent: the worker comes back by itself, in its conversation
    before = len(main_requests(api.requests))
    api.extend([Text("Still here.")])
    s.parent.restart(timeout=60)
    wait_agent(s, name, lambda a: a.get("state") == "idle", 120)
    assert agent(s, name)["session_id"] == first_id
    # the worker that was running when the parent stopped is back too (no claudy for it)
    boot_name = session_name(str(s.root / "boot"))
    wait_agent(s, boot_name, lambda a: a.get("state") not in (None, "exited"), 30)
    assert {name, boot_name} <= s.windows()
    time.sleep(0.5)
    send(s, name, "are you still there?")
    reqs = api.wait_for(lambda r: len(main_requests(r)) > before, 60)
    latest = json.dumps(main_requests(reqs)[-1].body)
    assert PROMPT in latest and "are you still there?" in latest  # the earlier turns came too
    wait_agent(s, name, lambda a: a.get("state") == "idle", 30)
