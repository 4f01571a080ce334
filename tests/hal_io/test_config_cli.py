"""The `config` commands of both CLIs, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hal_io.config_cli import parent_group
from hal_testing.config_text import SAMPLE
from host_shim.commands.cli import main as claudy


def _run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(parent_group(), args, env=env, catch_exceptions=False)


def _hal_agent(args: list[str]) -> Result:
    from parent_agent.commands.cli import main

    return CliRunner().invoke(main, ["config", *args], catch_exceptions=False)


def test_config_path_on_both_sides(cfg_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _hal_agent(["path"]).output == f"{cfg_file}\n"
    monkeypatch.delenv("HAL9000_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/xdg")
    result = CliRunner().invoke(claudy, ["config", "path"], catch_exceptions=False)
    assert result.output == "/xdg/hal9000/config.toml\n"  # not taken for a directory to open
    assert _hal_agent(["path"]).output == "/config/hal9000/config.toml\n"


def test_config_show_gives_each_origin(cfg_file: Path) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text(SAMPLE)
    out = _run(["show"], env={"HAL9000_WORKER_CPUS": "3"}).output.splitlines()
    assert out[0] == f"# {cfg_file}"
    assert 'memory = "4g"' in next(ln for ln in out if ln.startswith('memory = "4g"'))
    assert any(
        ln.startswith("cpus = 3") and ln.endswith("# env (HAL9000_WORKER_CPUS)") for ln in out
    )
    assert any(ln.startswith("pids = 1024") and ln.endswith("# default") for ln in out)
    assert any(ln.endswith(f"# file ({cfg_file}:9)") for ln in out)
    assert "[services.web]" in out
    data = json.loads(_run(["show", "--json"]).output)
    assert data["settings"]["worker.memory"] == {
        "value": "4g",
        "origin": "file",
        "detail": f"{cfg_file}:9",
    }
    assert data["settings"]["worker.env"]["value"] == ["GH_TOKEN_FILE"]
    assert data["exists"] is True


def test_config_get_and_set(cfg_file: Path) -> None:
    assert _run(["get", "worker.memory"]).output == "4g\n"  # no file: the default
    assert _run(["set", "worker.memory", "2g"]).output == 'worker.memory = "2g"\n'
    assert _run(["get", "worker.memory"]).output == "2g\n"
    assert _run(["get", "worker.command"]).output == '["claude"]\n'
    assert _run(["get", "worker.memory"], env={"HAL9000_WORKER_MEMORY": "8g"}).output == "8g\n"
    assert "memory = " in _run(["get", "worker"]).output
    result = _run(["set", "parent.cpus", "2"])
    assert "apply when the parent is recreated" in result.output
    bad = _hal_agent(["set", "worker.cpus", "many"])
    assert bad.exit_code == 2 and "refused worker.cpus" in bad.output
    assert _hal_agent(["get", "worker.cpu"]).exit_code == 2


def test_config_validate_exit_codes(cfg_file: Path, tmp_path: Path) -> None:
    assert _run(["validate"]).exit_code == 0  # no file: defaults
    good = tmp_path / "good.toml"
    good.write_text("[nope]\n")
    result = _run(["validate", str(good)])
    assert result.exit_code == 0 and "unknown section [nope]" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[worker]\ncpus = "x"\n')
    result = _hal_agent(["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2:8: [worker].cpus must be a number" in result.output
    result = CliRunner().invoke(claudy, ["config", "validate", str(bad)], catch_exceptions=False)
    assert result.exit_code == 2 and "[worker].cpus must be a number" in result.output
    assert _hal_agent(["validate", str(tmp_path / "absent.toml")]).exit_code == 2
    (tmp_path / "empty.toml").write_text("")
    result = _hal_agent(["validate", str(tmp_path / "empty.toml")])
    assert result.exit_code == 2 and "empty" in result.output


def test_config_validate_rejects_a_bad_service_table_with_line_and_column(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[worker]\ncpus = 1\n\n[services.web]\nimage = "w:1"\nport = "abc"\n')
    result = _hal_agent(["validate", str(bad)])
    assert result.exit_code == 2, result.output
    assert f"{bad}:6:8: [services.web].port must be a port number, got 'abc'" in result.output
    bad.write_text('[services.web]\ncommand = "web --port 1"\nenv = { A = 1 }\nimage = 2\n')
    result = CliRunner().invoke(claudy, ["config", "validate", str(bad)], catch_exceptions=False)
    assert result.exit_code == 2
    assert f"{bad}:2:11: [services.web].command must be an array of strings" in result.output
    assert f"{bad}:3:7: [services.web].env must be a table of strings" in result.output
    assert f"{bad}:4:9: [services.web].image must be a string, got 2" in result.output
    bad.write_text('[services.web]\nimage = "w"\nprot = 1\n')
    result = _hal_agent(["validate", str(bad)])
    assert result.exit_code == 0
    assert f"{bad}:3:1: unknown key [services.web].prot ignored (did you mean port?)" in (
        result.output
    )


def test_set_of_a_service_key_is_typed_and_checked(cfg_file: Path) -> None:
    assert _run(["set", "services.web.image", "123"]).output == 'services.web.image = "123"\n'
    assert "port = 8080" in _run(["set", "services.web.port", "8080"]).output
    bad = _hal_agent(["set", "services.web.port", "http"])
    assert bad.exit_code == 2 and "must be a port number" in bad.output
    bad = _hal_agent(["set", "services.web.prot", "1"])
    assert bad.exit_code == 2 and "did you mean services.web.port?" in bad.output
    assert "prot" not in cfg_file.read_text()
