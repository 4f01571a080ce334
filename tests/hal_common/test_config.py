"""Pure config tests: values, errors with line and column, warnings, env overrides, origins."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal_common.config import (
    Config,
    KeysConfig,
    WatchConfig,
    parse_config,
    parse_memory,
    read_config,
    resolve,
    text_value,
)
from hal_common.errors import ConfigError
from hal_common.shared_services import ServiceSpec


def test_config_defaults_without_a_file(tmp_path: Path) -> None:
    from hal_common.config import load_config

    assert load_config(tmp_path / "absent.toml") == Config()


def test_config_parses_values_and_warns_on_unknown_keys() -> None:
    cfg = parse_config('[worker]\nmemory = "2g"\ncpus = 1\nbogus = 3\n[nope]\nx = 1\n')
    assert cfg.worker.memory == "2g" and cfg.worker.cpus == 1.0
    assert any("[worker].bogus" in w for w in cfg.warnings)
    assert any("[nope]" in w for w in cfg.warnings)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[worker\n", ":1:"),
        ('[worker]\ncpus = "two"\n', "[worker].cpus must be a number"),
        ("[worker]\ncommand = []\n", "must not be empty"),
        ('[parent]\nsecurity = "yolo"\n', "expected one of auto, caps"),
        ('[worker]\nmemory = "lots"\n', "not a memory size"),
        ("[worker]\npids = true\n", "must be an integer"),
    ],
)
def test_config_errors_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert needle in str(e.value)


def test_parse_memory() -> None:
    assert parse_memory("512m") == 512 << 20
    assert parse_memory("4g") == 4 << 30
    assert parse_memory("") == 0
    with pytest.raises(ValueError, match="not a memory size"):
        parse_memory("4 gigs")


def _error(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        resolve(text, "c.toml", env or {})
    return e.value


def test_parse_errors_carry_line_and_1_based_column() -> None:
    e = _error('[worker]\nmemory = "4')
    assert (e.source, e.line) == ("c.toml", 2)
    assert e.message.startswith("c.toml:2:")
    e = _error("[worker\n")
    assert (e.line, e.column) == (1, 8)
    assert " at line " not in e.message  # the position is said once, up front


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ('[worker]\ncpus = "two"\n', 2, 8, "[worker].cpus must be a number, got 'two' (a string)"),
        ("[worker]\npids = 1.5\n", 2, 8, "[worker].pids must be an integer, got 1.5 (a number)"),
        ('[parent]\nroots = "~"\n', 2, 9, "[parent].roots must be an array of strings"),
        ("[keys]\nprefix = 1\n", 2, 10, "[keys].prefix must be a string, got 1 (an integer)"),
        ("[log]\n\n\nlevel = []\n", 4, 9, "[log].level must be a string, got [] (an array)"),
        ("worker = { cpus = true }\n", 1, 19, "must be a number, got True (a boolean)"),
        ("[watch]\nmode = 'fast'\n", 2, 8, "expected one of auto, inotify, poll"),
        ("[dashboard]\nmax_rows = -1\n", 2, 12, "[dashboard].max_rows must not be negative"),
        ("[worker]\ncpus = inf\n", 2, 8, "[worker].cpus must be a finite number"),
        ('[keys]\nstop = "R"\n', 2, 8, "[keys].stop is 'R', which [keys].restart also uses"),
        ('[keys]\nshell = " "\n', 2, 9, "[keys].shell is ' ', which tmux cannot bind"),
        ("[services.web]\nenabled = 1\n", 2, 11, "[services.web].enabled must be true or false"),
        ("services = 3\n", 1, 12, "[services] must be a table"),
        (
            '[services.web]\nport = "abc"\n',
            2,
            8,
            "[services.web].port must be a port number, got 'abc'",
        ),
        ("[services.web]\nport = 70000\n", 2, 8, "[services.web].port is 70000; expected a port"),
        (
            '[services.w]\ncommand = "ls -l"\n',
            2,
            11,
            "[services.w].command must be an array of str",
        ),
        ("[services.w]\nenv = { A = 1 }\n", 2, 7, "[services.w].env must be a table of strings"),
        ('[services.w]\nenv = ["A=1"]\n', 2, 7, "[services.w].env must be a table of strings, got"),
        ("[services.w]\nimage = 3\n", 2, 9, "[services.w].image must be a string, got 3"),
        ('[services.w]\nimage = ""\n', 2, 9, "[services.w].image must not be empty"),
        ("[services.w]\nstdio = []\n", 2, 9, "[services.w].stdio must not be empty"),
        ('[services.w]\nmcp = "yes"\n', 2, 7, "[services.w].mcp must be true or false"),
        ('[services.w]\ndata = "../etc"\n', 2, 8, "[services.w].data is '../etc'; expected a dir"),
        ('[services.w]\nmcp_path = "mcp"\n', 2, 12, "[services.w].mcp_path is 'mcp'; expected a"),
        ('[services.w]\nenv = { "A B" = "1" }\n', 2, 7, "has 'A B', which is not an environment"),
        ("[services]\nw = 1\n", 2, 5, "[services.w] must be a table, got 1"),
        ("[[worker]]\ncpus = 1\n", 1, 1, "[worker] must be a table, got [{'cpus': 1}] (an array)"),
    ],
)
def test_value_errors_name_line_column_and_expected_type(
    text: str, line: int, column: int, needle: str
) -> None:
    e = _error(text)
    assert (e.line, e.column) == (line, column), e.message
    assert e.message.startswith(f"c.toml:{line}:{column}: ")
    assert needle in e.message


def test_every_problem_of_a_save_is_reported_together() -> None:
    e = _error('[worker]\ncpus = "two"\npids = -1\n[parent]\nsecurity = "yolo"\n')
    lines = e.message.splitlines()
    assert [ln.split(" ")[0] for ln in lines] == ["c.toml:2:8:", "c.toml:3:8:", "c.toml:5:12:"]
    assert (e.line, e.column) == (2, 8)


def test_unknown_keys_warn_with_their_line_and_a_suggestion() -> None:
    cfg = parse_config('[worker]\nmemroy = "2g"\n\n[dashbord]\nx = 1\n[watch]\nmode = "poll"\n')
    assert cfg.warnings == (
        "config.toml:2:1: unknown key [worker].memroy ignored (did you mean memory?)",
        "config.toml:4:1: unknown section [dashbord] ignored (did you mean dashboard?)",
    )
    assert cfg.watch == WatchConfig(mode="poll")


def test_new_sections_and_defaults() -> None:
    cfg = Config()
    assert cfg.keys == KeysConfig("C-b", "N", "D", "X", "R", "S", "W", "T")
    assert (cfg.dashboard.refresh, cfg.dashboard.max_rows) == (2.0, 0)
    assert (cfg.watch.mode, cfg.watch.poll_interval) == ("auto", 1.0)
    cfg = parse_config('[keys]\nprefix = "C-a"\nstats = "F5"\n[dashboard]\nmax_rows = 20\n')
    assert (cfg.keys.prefix, cfg.keys.stats, cfg.dashboard.max_rows) == ("C-a", "F5", 20)


def test_services_are_typed_specs_that_default_to_enabled() -> None:
    cfg = parse_config(
        '[services.web]\nimage = "w"\nport = 8080\nprot = 1\n[services.db]\nenabled = false\n'
    )
    by = {s.name: s for s in cfg.services}
    assert by["web"] == ServiceSpec("web", image="w", port=8080)
    assert by["db"] == ServiceSpec("db", enabled=False)
    assert {"chromadb", "chroma-mcp", "memory-bank"} <= set(by)  # the built-ins
    assert cfg.warnings == (
        "config.toml:4:1: unknown key [services.web].prot ignored (did you mean port?)",
    )


def test_service_tables_merge_over_the_builtins_and_resolve_stdio() -> None:
    cfg = parse_config(
        '[services.chromadb]\nport = 9000\nenv = { X = "1" }\n'
        '[services.s]\nstdio = ["srv", "-v"]\nport = 8820\n'
    )
    by = {s.name: s for s in cfg.services}
    assert by["chromadb"].port == 9000 and by["chromadb"].command == ("hal-service", "chroma")
    assert by["chromadb"].environment == {"X": "1"} and by["chromadb"].token
    assert by["chroma-mcp"].environment == {"HAL_CHROMA_PORT": "9000"}
    assert by["s"].command == ("hal-service", "bridge", "--", "srv", "-v")
    assert by["s"].mcp and (by["s"].port, by["s"].mcp_path) == (8820, "/mcp")
    # every problem of every table at once, each where it is
    e = _error('[services.a]\nport = "x"\n[services.b]\ncommand = 1\nport = 0\n')
    assert [ln.split(" ")[0] for ln in e.message.splitlines()] == [
        "c.toml:2:8:",
        "c.toml:4:11:",
        "c.toml:5:8:",
    ]


def test_warnings_do_not_make_configs_differ() -> None:
    assert parse_config("[nope]\n") == Config()


def test_env_overrides_the_file_and_origins_say_so() -> None:
    text = '[worker]\nmemory = "1g"\ncpus = 3\n[services.web]\nport = 80\n'
    env = {
        "HAL9000_WORKER_MEMORY": "2g",  # not TOML: taken as the string
        "HAL9000_DASHBOARD_MAX_ROWS": "12",  # TOML integer
        "HAL9000_WORKER_ENV": '["FOO", "BAR"]',  # TOML array
        "HAL9000_PARENT_NAME": "123",  # a string key keeps the text as typed
        "HAL9000_CONFIG": "/elsewhere.toml",  # not a section: not ours to read
        "HAL9000_OFFLINE": "1",
        "HAL9000_WORKER_MEM": "1g",  # a section but no such key: a warning
    }
    r = resolve(text, "c.toml", env)
    assert r.config.worker.memory == "2g" and r.config.worker.cpus == 3.0
    assert r.config.worker.env == ("FOO", "BAR") and r.config.dashboard.max_rows == 12
    assert r.config.parent.name == "123"
    by_key = {s.key: (s.value, s.origin, s.detail) for s in r.settings}
    assert by_key["worker.memory"] == ("2g", "env", "HAL9000_WORKER_MEMORY")
    assert by_key["worker.cpus"] == (3.0, "file", "c.toml:3")
    assert by_key["worker.pids"] == (1024, "default", "")
    assert by_key["services.web.port"] == (80, "file", "c.toml:5")
    assert r.config.warnings == (
        "environment: HAL9000_WORKER_MEM names no key of [worker], ignored (did you mean memory?)",
    )


def test_bad_env_values_are_errors_naming_the_variable() -> None:
    e = _error("", {"HAL9000_WORKER_CPUS": "lots", "HAL9000_KEYS_STOP": "N"})
    assert e.message.splitlines() == [
        "environment: HAL9000_WORKER_CPUS='lots': [worker].cpus must be a number, got 'lots' "
        "(a string)",
        "environment: HAL9000_KEYS_STOP: [keys].stop is 'N', which [keys].new_session also uses",
    ]
    assert e.line is None


@pytest.mark.parametrize(
    ("raw", "kind", "want"),
    [
        ("2", None, 2),
        ("1.5", None, 1.5),
        ("true", None, True),
        ('["a"]', None, ["a"]),
        ("2g", None, "2g"),
        ('"quoted"', str, "quoted"),
        ("123", str, "123"),
        ("true", str, "true"),
        ("1\nx = 2", None, "1\nx = 2"),
        ("", None, ""),
    ],
)
def test_text_value(raw: str, kind: type | None, want: object) -> None:
    assert text_value(raw, kind) == want


def test_read_config_refuses_empty_and_missing_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert read_config(path, {}, missing_ok=True).config == Config()
    with pytest.raises(ConfigError, match="no such file"):
        read_config(path, {}, missing_ok=False)
    path.write_text("  \n")
    with pytest.raises(ConfigError, match=r"empty.*truncated") as e:
        read_config(path, {}, missing_ok=True)
    assert (e.value.line, e.value.column) == (1, 1)
    path.write_text("# all defaults\n")
    assert read_config(path, {}, missing_ok=False).config == Config()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[worker]\nmemory = ""\n', "a worker always has a memory limit"),
        ('[worker]\nmemory = "0"\n', "a worker always has a memory limit"),
        ('[worker]\nmemory = "1m"\n', "at least '64m'"),
        ("[worker]\ncpus = 0\n", "a worker always has a CPU limit"),
        ("[worker]\npids = 0\n", "a worker always has a process limit, at least 64"),
    ],
)
def test_worker_limits_cannot_be_turned_off(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match="worker") as e:
        parse_config(text, "c.toml")
    assert needle in e.value.message
