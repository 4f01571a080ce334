"""`config set` keeps every other byte; the `config` commands of both CLIs, run in-process."""

from __future__ import annotations

import difflib
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hal_common.config_edit import atomic_write, parse_key, set_in_file
from hal_common.errors import ConfigError, UsageError
from hal_io.config_cli import parent_group
from host_shim.commands.cli import main as claudy

SAMPLE = """\
# hal-9000 config: my laptop
[parent]
name = "hal9000-parent"
roots = ["~/src",   # work
         "~/play"]  # weekends

[worker]
# limits per worker
memory   = "4g"     # claude is hungry
cpus = 2
env = ["GH_TOKEN_FILE"]

[keys]
prefix = "C-a"   # screen habits

[services.web]
port = 8080
"""


@pytest.fixture
def cfg_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hal9000" / "config.toml"
    monkeypatch.setenv("HAL9000_CONFIG", str(path))
    for name in [n for n in os.environ if n.startswith("HAL9000_") and n != "HAL9000_CONFIG"]:
        monkeypatch.delenv(name)
    return path


def _changed(before: str, after: str) -> list[str]:
    return [
        d for d in difflib.ndiff(before.splitlines(True), after.splitlines(True)) if d[0] in "+-"
    ]


@pytest.mark.parametrize(
    ("key", "raw", "old_line", "new_line"),
    [
        ("worker.memory", "2g", 'memory   = "4g"     # claude is hungry',
         'memory   = "2g"     # claude is hungry'),
        ("worker.cpus", "1.5", "cpus = 2", "cpus = 1.5"),
        ("keys.prefix", "C-b", 'prefix = "C-a"   # screen habits',
         'prefix = "C-b"   # screen habits'),
        ("services.web.port", "9090", "port = 8080", "port = 9090"),
        ("worker.env", '["A", "B"]', 'env = ["GH_TOKEN_FILE"]', 'env = ["A", "B"]'),
    ],
)  # fmt: skip
def test_set_changes_only_the_edited_line(
    cfg_file: Path, key: str, raw: str, old_line: str, new_line: str
) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text(SAMPLE)
    set_in_file(cfg_file, key, raw)
    after = cfg_file.read_text()
    assert _changed(SAMPLE, after) == [f"- {old_line}\n", f"+ {new_line}\n"]


def test_set_adds_a_missing_key_as_one_new_line_in_its_table(cfg_file: Path) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text(SAMPLE)
    set_in_file(cfg_file, "worker.pids", "100")
    after = cfg_file.read_text()
    assert _changed(SAMPLE, after) == ["+ pids = 100\n"]
    assert after.index("pids = 100") < after.index("[keys]")
    set_in_file(cfg_file, "log.level", "debug")
    assert cfg_file.read_text() == after + '\n[log]\nlevel = "debug"\n'


@pytest.mark.parametrize(
    ("key", "raw", "needle"),
    [
        ("worker.cpus", "two", 'refused worker.cpus = "two": [worker].cpus must be a number'),
        ("worker.memory", "lots", "is not a memory size"),
        ("parent.security", "yolo", "expected one of auto, caps"),
        ("worker.command", "[]", "must not be empty"),
        ("keys.stop", "N", "[keys].stop is 'N', which [keys].new_session also uses"),
        ("services.web.enabled", "maybe", "must be true or false"),
    ],
)
def test_a_bad_value_is_refused_and_the_file_is_untouched(
    cfg_file: Path, key: str, raw: str, needle: str
) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text(SAMPLE)
    before = os.stat(cfg_file)
    with pytest.raises(ConfigError) as e:
        set_in_file(cfg_file, key, raw)
    assert needle in e.value.message
    assert "config.toml:" not in e.value.message  # no positions in a text never written
    assert cfg_file.read_text() == SAMPLE
    assert os.stat(cfg_file).st_ino == before.st_ino
    assert os.listdir(cfg_file.parent) == ["config.toml"]  # no temp file left behind


def test_set_refuses_to_edit_a_file_that_is_already_broken(cfg_file: Path) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text("[worker]\npids = -1\n")
    with pytest.raises(ConfigError, match="already has problems") as e:
        set_in_file(cfg_file, "worker.memory", "1g")
    assert f"{cfg_file}:2:8: [worker].pids must not be negative" in e.value.message
    set_in_file(cfg_file, "worker.pids", "1")  # but fixing the problem itself is fine
    assert cfg_file.read_text() == "[worker]\npids = 1\n"
    cfg_file.write_text("[worker\n")
    with pytest.raises(ConfigError, match="does not parse"):
        set_in_file(cfg_file, "worker.pids", "2")


def test_set_creates_the_file_and_directory(cfg_file: Path) -> None:
    assert set_in_file(cfg_file, "worker.memory", "2g") == "2g"
    assert cfg_file.read_text() == '[worker]\nmemory = "2g"\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(cfg_file).st_mode) == 0o666 & ~umask


def test_set_keeps_mode_crlf_and_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "hal.toml"
    real.parent.mkdir()
    real.write_bytes(b'[worker]\r\nmemory = "4g"\r\n\r\n[log]\r\nlevel = "info"\r\n')
    real.chmod(0o600)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    set_in_file(link, "worker.cpus", "1")
    assert link.is_symlink()
    assert real.read_bytes() == (
        b'[worker]\r\nmemory = "4g"\r\ncpus = 1\r\n\r\n[log]\r\nlevel = "info"\r\n'
    )
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600


def test_atomic_write_replaces_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("old")
    inode = os.stat(path).st_ino
    atomic_write(path, "new")
    assert path.read_text() == "new" and os.stat(path).st_ino != inode
    assert os.listdir(tmp_path) == ["f"]


@pytest.mark.parametrize(
    ("key", "raw", "written"),
    [
        ("worker.cpus", "2", "[worker]\ncpus = 2\n"),
        ("worker.cpus", "1.5", "[worker]\ncpus = 1.5\n"),
        ("services.x.enabled", "true", "[services.x]\nenabled = true\n"),
        ("worker.env", '["a"]', '[worker]\nenv = ["a"]\n'),
        ("worker.memory", "2g", '[worker]\nmemory = "2g"\n'),
        ("parent.name", "123", '[parent]\nname = "123"\n'),  # a string key keeps the text
        ("keys.stop", '"Q"', '[keys]\nstop = "Q"\n'),
    ],
)
def test_values_are_typed_as_toml_else_strings(
    cfg_file: Path, key: str, raw: str, written: str
) -> None:
    set_in_file(cfg_file, key, raw)
    assert cfg_file.read_text() == written


def test_parse_key() -> None:
    assert parse_key("worker.memory") == ("worker", "memory")
    assert parse_key('services."my.svc".enabled') == ("services", "my.svc", "enabled")
    with pytest.raises(UsageError) as e:
        parse_key("worker.cpu")
    assert "did you mean worker.cpus" in e.value.hint
    for bad in ("worker", "nope.x", "services.web", "", "a = b"):
        with pytest.raises(UsageError):
            parse_key(bad)


# -- the commands ----------------------------------------------------------------------------


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


def test_set_into_something_that_is_not_a_table_is_refused(cfg_file: Path) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text("worker = 3\n")
    with pytest.raises(ConfigError, match=r"worker is not a table, so worker\.memory cannot"):
        set_in_file(cfg_file, "worker.memory", "1g")
    assert cfg_file.read_text() == "worker = 3\n"
