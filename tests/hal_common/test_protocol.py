"""The replies between claudy and hal-agent: what the parent prints is what it printed before
(byte for byte where the schema is documented as stable), what the host reads back is typed,
and a reply that does not fit is a HalError naming the field."""

from __future__ import annotations

import ast
import json
import os
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hal_common import protocol
from hal_common.credentials import Credential
from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_common.protocol import (
    AuthStatus,
    Health,
    LsReply,
    ServiceRow,
    ServicesReply,
    StatsReply,
    SyncStatus,
    WorkerUsage,
)
from hal_testing import REPO
from parent_agent.adapters import claude_home
from parent_agent.core.agent_state import AgentState
from parent_agent.core.listing import ls_row
from parent_agent.core.model import ServiceState, Worker
from parent_agent.core.usage import Usage

NOW = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)


def _workers() -> list[Worker]:
    started = NOW - timedelta(seconds=512)
    return [
        Worker(
            "myproj-1a2b3c4d",
            "hal9000-w-myproj-1a2b3c4d",
            "/home/me/src/myproj",
            "hal9000/worker:minimal",
            "running",
            started,
            started,
            memory=4 << 30,
            nano_cpus=2_000_000_000,
            pids=1024,
        ),
        Worker(
            "old-00000000",
            "hal9000-w-old-00000000",
            "/home/me/old",
            "hal9000/worker:standard",
            "exited",
            None,
            None,
        ),
        Worker(
            "half-11111111",
            "hal9000-w-half-11111111",
            "/p",
            "img",
            "running",
            started,
            started,
            nano_cpus=1_500_000_000,
        ),
    ]


def test_ls_json_is_byte_identical_to_the_documented_schema() -> None:
    rows = [ls_row(w, NOW, {"myproj-1a2b3c4d"}) for w in _workers()]
    before = json.dumps(rows, indent=2)  # what `hal-agent ls --json` printed until now
    assert LsReply.from_json(rows).dumps() == before
    reply = LsReply.loads(before)
    assert reply.dumps() == before
    first = reply.rows[0]
    assert (first.name, first.window, first.uptime_s) == ("myproj-1a2b3c4d", True, 512)
    assert first.limits.cpus == 2.0 and reply.rows[1].limits.memory is None
    assert LsReply.loads("[]").rows == ()
    assert json.loads(before)[0]["agent"] is None  # no state known: null


def test_ls_json_carries_the_agent_state_as_the_parent_has_it() -> None:
    sid = "0b7e3c1a-2d4f-4e5a-9b6c-7d8e9f0a1b2c"
    states = [
        AgentState("waiting", NOW, "permission: Bash", sid),
        AgentState("exited", NOW, "out of memory", sid, exit_code=137, oom=True),
    ]
    rows = [ls_row(w, NOW, set(), a) for w, a in zip(_workers(), [*states, None], strict=True)]
    before = json.dumps(rows, indent=2)
    assert rows[0]["agent"] == {
        "state": "waiting",
        "since": NOW.isoformat(),
        "reason": "permission: Bash",
        "session_id": sid,
        "exit_code": None,
        "oom": False,
    }
    reply = LsReply.loads(before)
    assert reply.dumps() == before
    second = reply.rows[1].agent
    assert second is not None and (second.state, second.exit_code, second.oom) == (
        "exited",
        137,
        True,
    )
    # an older parent's rows have no `agent`: read as unknown
    old = [{k: v for k, v in r.items() if k != "agent"} for r in rows]
    assert all(r.agent is None for r in LsReply.from_json(old).rows)
    assert reply.rows[2].agent is None


def test_stats_json_is_byte_identical() -> None:
    use = {
        "b-2": Usage(None, 10, 20, 3, 0, 0, 0, 0),
        "a-1": Usage(3.2, 136314880, 4294967296, 12, 5, 6, 7, 8),
        "c-3": Usage(0.0, 0, 0, 0, 0, 0, 0, 0),
    }
    before = json.dumps({n: asdict(u) for n, u in sorted(use.items())}, indent=2)
    reply = StatsReply({n: WorkerUsage(**asdict(u)) for n, u in sorted(use.items())})
    assert reply.dumps() == before
    assert StatsReply.loads(before) == reply
    assert list(StatsReply.loads(before).usage) == ["a-1", "b-2", "c-3"]


def test_services_json_is_unchanged() -> None:
    found = [
        ServiceState("chromadb", True, "ok", "127.0.0.1:8000", 8000),
        ServiceState("memory-bank", False, "exited", "exit 1", None, mcp=True),
    ]
    before = json.dumps([asdict(s) for s in found], indent=2)
    reply = ServicesReply(tuple(ServiceRow(**asdict(s)) for s in found))
    assert reply.dumps() == before and ServicesReply.loads(before) == reply


def test_auth_status_json_is_unchanged_in_each_of_its_shapes(tmp_path: Path) -> None:
    empty = claude_home.auth_status(tmp_path / "none")
    home = tmp_path / "claude"
    doc = json.dumps(
        {
            "claudeAiOauth": {
                "accessToken": "sk-ant-oat01-x",
                "refreshToken": "r",
                "expiresAt": 4102444800000,
                "scopes": ["user:inference"],
                "subscriptionType": "max",
            }
        }
    )
    layout = ParentLayout(claude_home=home, run_dir=tmp_path / "run", data_dir=tmp_path / "data")
    uid, gid = os.getuid(), os.getgid()
    claude_home.store_credential(layout, Credential("oauth", "~/x", doc), uid, gid)
    stored = claude_home.auth_status(home)
    (home / ".credentials.json").write_text("{not json")
    broken = claude_home.auth_status(home)
    assert "error" in broken and "refreshed_since_import" in stored
    for st in (empty, stored, broken):
        before = json.dumps(st, indent=2)
        assert AuthStatus.from_json(st).dumps() == before
        assert AuthStatus.loads(before).dumps() == before
    parsed = AuthStatus.loads(json.dumps(stored))
    assert parsed.present and parsed.kind == "oauth" and parsed.expires_at == 4102444800.0
    assert AuthStatus.from_json({"present": False}) == AuthStatus(present=False)


def test_health_and_sync_status_are_unchanged(tmp_path: Path) -> None:
    empty: dict[str, list[str]] = {"errors": [], "restart_needed": []}
    assert Health().dumps() == json.dumps(empty, indent=2)
    data = {
        "errors": [{"time": NOW.isoformat(), "text": "dockerd exited"}],
        "restart_needed": ["parent.memory"],
    }
    health = Health.from_json(data)
    assert health.dumps() == json.dumps(data, indent=2)
    assert health.restart_needed == ("parent.memory",) and health.errors[0].text == "dockerd exited"
    before = json.dumps({"synced_at": 1700000000.5, "files": 6})  # `sync --status`: one line
    assert SyncStatus(1700000000.5, 6).dumps() == before
    assert SyncStatus.loads('{"synced_at": null, "files": 0}').synced_at is None


@pytest.mark.parametrize(
    ("reply", "text", "needle"),
    [
        (LsReply, "no json", "reply to `ls --json` is not understood: not JSON"),
        (LsReply, "{}", "the reply is not a list"),
        (LsReply, '[{"project": "/p"}]', "[0].name is missing"),
        (
            LsReply,
            '[{"name": "n", "project": "/p", "state": "running", "image": "i",'
            ' "created": null, "uptime_s": true, "window": true, "limits": {}}]',
            "[0].uptime_s is True, not int",
        ),
        (
            LsReply,
            '[{"name": "n", "project": "/p", "state": "running", "image": "i",'
            ' "created": null, "uptime_s": 1, "window": true, "limits": []}]',
            "[0].limits is [], not dict",
        ),
        (
            LsReply,
            '[{"name": "n", "project": "/p", "state": "running", "image": "i", "created": null,'
            ' "uptime_s": 1, "window": true, "limits": {}, "agent": {"state": 3}}]',
            "[0].agent.state is 3, not str",
        ),
        (StatsReply, '{"w": {"cpu_pct": "high"}}', "w.cpu_pct is 'high', not int or float"),
        (AuthStatus, '{"kind": "oauth"}', "present is missing"),
        (Health, '{"errors": [{"time": "t"}]}', "errors[0].text is missing"),
        (Health, '{"restart_needed": [1]}', "restart_needed[0] is 1, not a string"),
        (SyncStatus, "[]", "reply to `sync --status` is not understood: the reply is not"),
        (ServicesReply, '[{"name": "x", "ok": 1, "state": "ok"}]', "[0].ok is 1, not bool"),
    ],
)
def test_a_reply_that_does_not_fit_says_what_is_wrong(
    reply: type[protocol._Reply], text: str, needle: str
) -> None:
    with pytest.raises(HalError) as e:
        reply.loads(text)
    assert needle in e.value.message and "claudy down && claudy" in e.value.hint


def test_names_both_sides_must_agree_on_are_the_protocols() -> None:
    from parent_agent.adapters import config_sync as apply_sync
    from parent_agent.adapters import tmux as parent_tmux
    from parent_agent.core import tmux as parent_core_tmux

    # the parent adapters still hold copies (they are converted separately): they must agree
    assert parent_tmux.WINDOW_MARK == protocol.WINDOW_OPTION
    assert apply_sync.HOST_STATE == protocol.SYNC_HOST_STATE
    assert apply_sync.ALLOWED_TOPS == protocol.SYNC_TOPS
    assert parent_core_tmux.SESSION == protocol.TMUX_SESSION
    assert parent_core_tmux.DETACH_KEYS == protocol.DETACH_KEYS


# --- the host's layers ------------------------------------------------------------------------

HOST = REPO / "host_shim"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_engine_facade_imports_docker_py_on_the_host() -> None:
    for path in sorted(HOST.rglob("*.py")):
        roots = {name.split(".")[0] for name in _imports(path)}
        if path != HOST / "adapters" / "engine.py":
            assert not roots & {"docker", "requests"}, path
        if path.parent.name == "core":
            assert not roots & {"docker", "click", "rich", "libtmux"}, path


def test_the_protocol_is_pure() -> None:
    roots = {name.split(".")[0] for name in _imports(Path(protocol.__file__))}
    assert not roots & {"docker", "click", "rich", "libtmux"}


def test_egress_rows_round_trip_and_say_what_is_wrong() -> None:
    import pytest

    from hal_common.errors import HalError
    from hal_common.protocol import EgressReply, EgressRow

    row = EgressRow(1.5, None, "10.213.213.3", "x.example", 443, None, "deny", "r", "CONNECT")
    reply = EgressReply((row,))
    assert EgressReply.loads(reply.dumps()) == reply
    with pytest.raises(HalError, match=r"\[0\]\.port"):
        EgressReply.loads('[{"t": 1, "client": "c", "host": "h", "port": "x", "verdict": "deny",'
                          ' "rule": "r", "method": "GET"}]')  # fmt: skip
    with pytest.raises(HalError, match="not a list"):
        EgressReply.loads("{}")


def test_ls_json_says_each_worker_s_claude_code_and_whether_it_is_outdated() -> None:
    from dataclasses import replace

    ws = [replace(w, claude=v) for w, v in zip(_workers()[:2], ["2.1.332", ""], strict=True)]
    rows = [ls_row(w, NOW, set(), None, "2.1.334") for w in ws]
    assert rows[0]["claude"] == {"version": "2.1.332", "outdated": True}
    assert rows[1]["claude"] == {"version": None, "outdated": True}  # made before the store
    current = ls_row(replace(ws[0], claude="2.1.334"), NOW, set(), None, "2.1.334")
    assert current["claude"] == {"version": "2.1.334", "outdated": False}
    assert ls_row(ws[0], NOW, set())["claude"]["outdated"] is False  # nothing installed
    reply = LsReply.loads(json.dumps(rows))
    assert reply.rows[0].claude is not None and reply.rows[0].claude.outdated
    assert reply.dumps() == json.dumps(rows, indent=2)
