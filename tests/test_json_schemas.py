"""Every `--json` output has a JSON Schema in docs/schemas/, and holds to it.

Here: each schema is a valid draft 2020-12 schema; each command it names exists and takes
`--json`; every `--json` option of both CLIs is named by a schema (a new one without a schema
fails here); and the outputs that need no engine are produced by the real commands and
validated. The rest are validated where the engine tests and the end-to-end tests produce
them (tests/e2e/test_parent_env_and_logs.py runs every named command on a real parent).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from hal_common.credentials import Credential
from hal_common.layout import ParentLayout
from hal_common.protocol import EgressRow, LoopError, PortRow
from hal_testing import schemas
from host_shim.commands.cli import main as claudy
from host_shim.core.hint import FORWARDED
from parent_agent.adapters import claude_home, snapshot_file
from parent_agent.adapters.egress_log import EgressLog
from parent_agent.commands.cli import main as hal_agent
from parent_agent.core.snapshot import Health, Snapshot

CLIS: dict[str, click.Group] = {"claudy": claudy, "hal-agent": hal_agent}


def _walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command under `group` (hidden ones too, hal-agent's lazy ones loaded), by path."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        yield (*path, name)
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, (*path, name))


def _command(cli: str, path: tuple[str, ...]) -> click.Command | None:
    cmd: click.Command | None = CLIS[cli]
    for word in path:
        if not isinstance(cmd, click.Group):
            return None
        cmd = cmd.get_command(click.Context(cmd), word)
    return cmd


def _takes_json(cmd: click.Command | None) -> bool:
    return cmd is not None and any(
        "--json" in p.opts for p in cmd.params if isinstance(p, click.Option)
    )


def json_options() -> set[str]:
    """Every `--json` of both CLIs as a command line ("hal-agent claude ls --json"); and for
    each hal-agent command claudy forwards, claudy's line for it."""
    found = set()
    for cli, group in CLIS.items():
        for path in _walk(group):
            if _takes_json(_command(cli, path)):
                found.add(" ".join((cli, *path, "--json")))
                if cli == "hal-agent" and path[0] in FORWARDED:
                    found.add(" ".join(("claudy", *path, "--json")))
    return found


def named() -> dict[str, str]:
    """Each command line a schema names → that schema."""
    return {line: name for name in schemas.names() for line in schemas.commands(name)}


@pytest.mark.parametrize("name", schemas.names())
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    doc = schemas.load(name)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(doc)
    assert doc["title"] and doc["description"] and schemas.commands(name)


def test_each_named_command_exists_and_takes_json() -> None:
    for line, name in named().items():
        cli, *words = line.split()
        assert words[-1] == "--json", f"{name}.json: {line!r} does not end in --json"
        path = tuple(w for w in words[:-1] if not w.startswith("-"))  # `status --all`
        if cli == "claudy" and path[0] in FORWARDED:  # claudy passes it to hal-agent
            cli = "hal-agent"
        assert _takes_json(_command(cli, path)), f"{name}.json names {line!r}: no such option"


def test_every_json_option_has_a_schema() -> None:
    missing = json_options() - named().keys()
    assert not missing, f"--json outputs without a schema in docs/schemas/: {sorted(missing)}"
    assert len(json_options()) >= 15  # the walk sees the commands (not an empty tree)


def test_the_docs_link_every_schema() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    for name in schemas.names():
        assert f"(schemas/{name}.json)" in text, name


def test_a_misfit_is_named() -> None:
    with pytest.raises(AssertionError, match=r"health\.json: \['errors'\]\[0\]: 'text'"):
        schemas.validate("health", {"errors": [{"time": "now"}], "restart_needed": []})
    with pytest.raises(AssertionError, match="Additional properties"):
        schemas.validate("health", {"errors": [], "restart_needed": [], "surprise": 1})


# -- outputs that need no engine, from the real commands -------------------------------------


def _agent(layout_env: dict[str, str], *args: str) -> object:
    res = CliRunner().invoke(hal_agent, list(args), env=layout_env, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.fixture
def layout_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("HAL9000_CONFIG", str(tmp_path / "config.toml"))
    return {
        "HAL_LOG_DIR": str(tmp_path / "log"),
        "HAL_RUN_DIR": str(tmp_path / "run"),
        "HAL_CLAUDE_HOME": str(tmp_path / "claude"),
        "HAL_DATA_DIR": str(tmp_path / "data"),
    }


def test_health_json(layout_env: dict[str, str]) -> None:
    schemas.validate("health", _agent(layout_env, "health", "--json"))  # no snapshot yet
    now = datetime.now(UTC)
    snap = Snapshot(
        now=now,
        health=Health(engine_ok=True),
        errors=(LoopError(now.isoformat(), "dockerd exited"),),
        restart_needed=("parent.memory",),
    )
    snapshot_file.publish(ParentLayout.from_env(layout_env).status_file, snap)
    doc = _agent(layout_env, "health", "--json")
    schemas.validate("health", doc)
    assert doc == {
        "errors": [{"time": now.isoformat(), "text": "dockerd exited"}],
        "restart_needed": ["parent.memory"],
    }


def test_auth_status_json_in_each_form(layout_env: dict[str, str]) -> None:
    schemas.validate("auth-status", _agent(layout_env, "auth", "status", "--json"))  # none
    layout = ParentLayout.from_env(layout_env)
    layout.claude_home.mkdir(mode=0o700)
    cred = Credential("token", "/home/me/token", "sk-ant-oat01-" + "x" * 80)
    claude_home.store_credential(layout, cred, 1000, 1000)
    held = _agent(layout_env, "auth", "status", "--json")
    schemas.validate("auth-status", held)
    assert isinstance(held, dict) and held["present"] and held["kind"] == "token"
    (layout.claude_home / ".credentials.json").write_text("{not json")
    unreadable = _agent(layout_env, "auth", "status", "--json")
    schemas.validate("auth-status", unreadable)


def test_keys_json(layout_env: dict[str, str]) -> None:
    doc = _agent(layout_env, "keys", "--json")
    schemas.validate("keys", doc)
    assert isinstance(doc, dict) and doc["bindings"]


def test_egress_json(layout_env: dict[str, str]) -> None:
    log = EgressLog(ParentLayout.from_env(layout_env).egress_log)
    log.append(EgressRow(time.time(), "p-1a2b3c4d", "10.0.0.5", "x.test", 443, None, "deny",
                         "not in allowlist", "CONNECT"))  # fmt: skip
    log.append(EgressRow(time.time(), None, "10.0.0.9", "10.0.0.1", 8811, "10.0.0.1", "allow",
                         "gate", "GATE"))  # fmt: skip
    log.close()
    doc = _agent(layout_env, "egress", "--json")
    schemas.validate("egress", doc)
    assert isinstance(doc, list) and len(doc) == 2


def test_config_show_json_on_both_sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[worker]\nmemory = "2g"\nenv = { A = "1" }\n\n[services.mine]\nimage = "x"\n')
    monkeypatch.setenv("HAL9000_CONFIG", str(cfg))
    monkeypatch.setenv("HAL9000_DASHBOARD_MAX_ROWS", "9")
    for cli in CLIS.values():
        res = CliRunner().invoke(cli, ["config", "show", "--json"], catch_exceptions=False)
        doc = json.loads(res.output)
        schemas.validate("config-show", doc)
        assert doc["settings"]["dashboard.max_rows"]["origin"] == "env"
        assert doc["settings"]["services.mine.image"]["origin"] == "file"


def test_ports_json(layout_env: dict[str, str]) -> None:
    now = datetime.now(UTC)
    rows = (
        PortRow("app-1a2b3c4d", 3000, "http://127.0.0.1:47100", 47100, None),
        PortRow("web-5e6f7a8b", 3000, None, None, "web-5e6f7a8b:3000 has no host port: …"),
    )
    snap = Snapshot(now=now, health=Health(engine_ok=True), ports=rows)
    snapshot_file.publish(ParentLayout.from_env(layout_env).status_file, snap)
    doc = _agent(layout_env, "ports", "--json")
    schemas.validate("ports", doc)
    assert isinstance(doc, list) and [r["url"] for r in doc] == ["http://127.0.0.1:47100", None]
    one = _agent(layout_env, "ports", "app-1a2b3c4d", "--json")
    assert isinstance(one, list) and len(one) == 1
