"""`hal-agent egress`: the egress log as a table or typed JSON rows; a missing or unreadable
log is a message, not a traceback."""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner

from hal_common.naming import session_name
from hal_common.protocol import EgressReply, EgressRow
from parent_agent.adapters.egress_log import EgressLog
from parent_agent.commands.cli import main


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"HAL_LOG_DIR": str(tmp_path / "log"), "HAL_RUN_DIR": str(tmp_path / "run")}
    res = CliRunner().invoke(main, ["egress", *args], env=env)
    return res.exit_code, res.output


def _log(tmp_path: Path, rows: list[EgressRow]) -> None:
    log = EgressLog(tmp_path / "log" / "egress.jsonl")
    for r in rows:
        log.append(r)


def _row(worker: str | None, host: str, verdict: str, rule: str, t: float = 0) -> EgressRow:
    return EgressRow(
        t or time.time(), worker, "10.213.213.7", host, 443, "203.0.113.9", verdict, rule, "CONNECT"
    )


def test_a_missing_log_says_so(tmp_path: Path) -> None:
    code, out = run(tmp_path)
    assert code == 0 and "no requests logged yet" in out and "egress.jsonl" in out
    code, out = run(tmp_path, "--json")
    assert code == 0 and EgressReply.loads(out).rows == ()


def test_an_unreadable_log_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "log" / "egress.jsonl").mkdir(parents=True)  # not a file
    code, out = run(tmp_path)
    assert code == 1 and "cannot read the egress log" in out and "Traceback" not in out


def test_the_table_and_the_json(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    mine = session_name(os.path.realpath(project))
    _log(
        tmp_path,
        [
            _row("other-1", "pypi.org", "allow", "pypi.org:443"),
            _row(mine, "evil.example", "deny", "not in allowlist"),
            _row(None, "2001:db8::1", "deny", "special address"),
            _row(mine, "api.anthropic.com", "allow", "api.anthropic.com:443"),
        ],
    )
    code, out = run(tmp_path)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["time", "worker", "host:port", "verdict", "rule"]
    assert len(lines) == 5
    assert "evil.example:443" in lines[2] and "deny" in lines[2] and "not in allowlist" in lines[2]
    assert "? 10.213.213.7" in lines[3] and "[2001:db8::1]:443" in lines[3]
    code, out = run(tmp_path, "-n", "1")
    assert len(out.splitlines()) == 2 and "api.anthropic.com" in out
    code, out = run(tmp_path, str(project), "--json")
    rows = EgressReply.loads(out).rows
    assert [r.host for r in rows] == ["evil.example", "api.anthropic.com"]
    assert {r.worker for r in rows} == {mine}
    code, out = run(tmp_path, "nobody")
    assert code == 0 and "no requests from nobody logged" in out
    code, out = run(tmp_path, "-n", "0")
    assert code == 2
