"""ParentClient over a scripted parent: the argv it runs, the typed replies, the failures.

The engine-level path (real exec, real hal-agent) is in tests/e2e/test_claudy.py and
tests/e2e/test_shared_services.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import pytest

from hal_common.errors import HalError
from host_shim.adapters.engine import ContainerHandle, ExecResult
from host_shim.adapters.parent_client import ParentClient, ParentCommandFailed


class ScriptedParent(ContainerHandle):
    """A fake of our own seam (the façade's handle, not docker-py): it answers each argv from
    a script and records what was sent on stdin, so ParentClient's parsing runs in ms."""

    def __init__(self, answers: dict[str, ExecResult]) -> None:
        self.answers = answers
        self.sent: list[tuple[list[str], bytes]] = []

    def _answer(self, argv: list[str]) -> ExecResult:
        key = " ".join(argv)
        return next((r for k, r in self.answers.items() if key.startswith(k)), ExecResult(127, ""))

    def exec(self, argv: list[str], what: str = "") -> ExecResult:
        return self._answer(argv)

    def exec_split(self, argv: list[str], what: str = "") -> ExecResult:
        return self._answer(argv)

    def exec_with_stdin(self, argv: list[str], data: Iterable[bytes]) -> ExecResult:
        self.sent.append((argv, b"".join(data)))
        return self._answer(argv)


LIMITS = {"memory": None, "cpus": None, "pids": None}
ROW = {
    "name": "p-1",
    "project": "/p",
    "state": "running",
    "image": "i",
    "created": None,
    "uptime_s": 3,
    "window": False,
    "limits": LIMITS,
}


def test_replies_come_back_typed(caplog: pytest.LogCaptureFixture) -> None:
    parent = ScriptedParent(
        {
            "hal-agent ls --json --all": ExecResult(0, json.dumps([ROW])),
            "hal-agent health --json": ExecResult(0, '{"errors": [], "restart_needed": ["a.b"]}'),
            "hal-agent sync --status": ExecResult(0, '{"synced_at": null, "files": 0}'),
            "hal-agent auth status --json": ExecResult(0, '{"present": false}'),
            "hal-agent spawn /p --no-attach --image-id sha256:1": ExecResult(
                0, "p-1\n", "p-1\n", ""
            ),
            "sh -c": ExecResult(0, "sha256:1\ntrue\np-1\n"),
            "test -e /run/hal9000/ready": ExecResult(0, ""),
        }
    )
    agent = ParentClient(parent)
    (row,) = agent.ls()
    assert row.name == "p-1" and row.uptime_s == 3
    assert agent.health().restart_needed == ("a.b",)
    assert agent.sync_status().synced_at is None
    assert not agent.auth_status().present
    assert agent.spawn("/p", "sha256:1") == "p-1"
    # the engine reads the two streams apart: the session printed last can come first
    warning = "/p belongs to root (0:0) and claudy runs as root: …\n"
    parent.answers["hal-agent spawn /p --no-attach --image-id sha256:1"] = ExecResult(
        0, "p-1\n" + warning, stdout="p-1\n", stderr=warning
    )
    with caplog.at_level(logging.WARNING):
        assert agent.spawn("/p", "sha256:1") == "p-1"
    assert [r.getMessage() for r in caplog.records] == [warning.strip()]  # to the log
    assert agent.probe("img", "hal9000-w-p-1").windows == {"p-1"}
    assert agent.ready_now()


def test_stdin_carries_the_bytes_and_failures_keep_their_messages() -> None:
    parent = ScriptedParent(
        {
            "hal-agent auth import": ExecResult(0, "imported token from f\n"),
            "hal-agent sync --force": ExecResult(2, ""),
            "hal-agent load-image": ExecResult(1, "no space left\n"),
            "hal-agent auth status --json": ExecResult(1, "unreadable\n"),
            "hal-agent ls": ExecResult(0, "garbage"),
        }
    )
    agent = ParentClient(parent)
    assert agent.import_credential(b"secret") == "imported token from f"
    assert parent.sent == [(["hal-agent", "auth", "import"], b"secret")]
    with pytest.raises(ParentCommandFailed) as e:
        agent.sync(b"tar", force=True)
    assert e.value.message == "sync failed with code 2" and e.value.code == 2
    with pytest.raises(ParentCommandFailed, match="loading img into the parent failed: no space"):
        agent.load_image("img", iter([b"a", b"b"]))
    assert parent.sent[-1] == (["hal-agent", "load-image"], b"ab")
    with pytest.raises(ParentCommandFailed, match="could not say what is imported: unreadable"):
        agent.auth_status()
    with pytest.raises(HalError, match="reply to `ls --json` is not understood"):
        agent.ls()


def test_send_passes_the_text_after_a_double_dash_and_says_why_it_failed() -> None:
    ok = ScriptedParent({"hal-agent send": ExecResult(0, "")})
    seen: list[list[str]] = []
    real = ok.exec

    def record(argv: list[str], what: str = "") -> ExecResult:
        seen.append(argv)
        return real(argv, what)

    ok.exec = record  # type: ignore[method-assign]
    ParentClient(ok).send("p-1", "-rf yes")
    ParentClient(ok).send("/home/me/p", "", enter=False, keys=["Down", "Enter"])
    ParentClient(ok).send("p-1", "no", enter=False)
    assert seen == [
        ["hal-agent", "send", "p-1", "--", "-rf yes"],
        ["hal-agent", "send", "/home/me/p", "--no-enter", "--key", "Down", "--key", "Enter"],
        ["hal-agent", "send", "p-1", "--no-enter", "--", "no"],
    ]
    stopped = ScriptedParent({"hal-agent send": ExecResult(2, "hal-agent: p-1 is exited\n")})
    with pytest.raises(ParentCommandFailed) as e:
        ParentClient(stopped).send("p-1", "yes")
    assert e.value.code == 2 and "p-1 is exited" in e.value.message
