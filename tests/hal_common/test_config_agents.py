"""Issue 12's config: `[worker] env` in two forms, `resume`, `[notify]`, `next_waiting`, and
validation that matches what the parent can run (tmux's key grammar, interval ranges)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from hal_common.config import (
    Config,
    NotifyConfig,
    WorkerConfig,
    parse_config,
    resolve,
    worker_env,
)
from hal_common.config_schema import TMUX_NAMED_KEYS, tmux_key
from hal_common.errors import ConfigError


def _error(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        resolve(text, "c.toml", env)
    return e.value


# -- [worker] env ---------------------------------------------------------------------------


def test_env_names_take_values_from_the_parents_environment() -> None:
    cfg = parse_config('[worker]\nenv = ["GITHUB_TOKEN", "ABSENT"]\n')
    assert cfg.worker.env == ("GITHUB_TOKEN", "ABSENT")
    assert worker_env(cfg.worker, {"GITHUB_TOKEN": "t", "OTHER": "o"}) == {"GITHUB_TOKEN": "t"}


@pytest.mark.parametrize(
    "text",
    [
        '[worker]\nenv = { ANTHROPIC_BASE_URL = "http://10.0.0.1:8080", EMPTY = "" }\n',
        '[worker.env]\nANTHROPIC_BASE_URL = "http://10.0.0.1:8080"\nEMPTY = ""\n',
    ],
)
def test_env_table_gives_literal_values(text: str) -> None:
    cfg = parse_config(text)
    want = {"ANTHROPIC_BASE_URL": "http://10.0.0.1:8080", "EMPTY": ""}
    assert cfg.worker.env == want
    # the parent's environment plays no part in a table
    assert worker_env(cfg.worker, {"ANTHROPIC_BASE_URL": "other"}) == want


def test_env_table_from_the_environment_variable() -> None:
    cfg = resolve(None, env={"HAL9000_WORKER_ENV": '{ A = "b c" }'}).config
    assert worker_env(cfg.worker, {}) == {"A": "b c"}
    cfg = resolve(None, env={"HAL9000_WORKER_ENV": '["A"]'}).config
    assert worker_env(cfg.worker, {"A": "1"}) == {"A": "1"}


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ('[worker]\nenv = ["OK", "1BAD"]\n', 2, 7, "'1BAD', which is not an environment variable"),
        ('[worker]\nenv = { "A-B" = "x" }\n', 2, 7, "'A-B', which is not an environment"),
        ('[worker]\nenv = { A = "x\\u0000y" }\n', 2, 7, "a NUL character in the value of A"),
        ("[worker]\nenv = { A = 1 }\n", 2, 7, "must be an array of variable names or a table"),
        ('[worker]\nenv = ["A", 1]\n', 2, 7, "must be an array of variable names or a table"),
        ('[worker]\nenv = "A"\n', 2, 7, "must be an array of variable names or a table"),
        ('[worker]\nresume = "yes"\n', 2, 10, "[worker].resume must be true or false"),
    ],
)
def test_env_and_resume_errors(text: str, line: int, column: int, needle: str) -> None:
    e = _error(text)
    assert (e.line, e.column) == (line, column), e.message
    assert needle in e.message


def test_resume_defaults_on() -> None:
    assert Config().worker.resume is True
    assert parse_config("[worker]\nresume = false\n").worker.resume is False


# -- [notify] and [keys] next_waiting -------------------------------------------------------


def test_notify_defaults_and_values() -> None:
    assert Config().notify == NotifyConfig((), ("waiting", "exited"), 30.0)
    cfg = parse_config(
        '[notify]\ncommand = ["curl", "-s", "-d", "@-", "https://ntfy.sh/t"]\n'
        'on = ["waiting", "idle", "exited"]\ndebounce = 0\n'
    )
    assert cfg.notify == NotifyConfig(
        ("curl", "-s", "-d", "@-", "https://ntfy.sh/t"), ("waiting", "idle", "exited"), 0.0
    )


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ('[notify]\non = ["waiting", "working"]\n', 2, 6, "'working'; expected states among"),
        ("[notify]\ndebounce = 3601\n", 2, 12, "is 3601.0; expected 0 to 3600 seconds"),
        ("[notify]\ndebounce = -1\n", 2, 12, "expected 0 to 3600 seconds"),
        ("[notify]\ndebounce = nan\n", 2, 12, "expected 0 to 3600 seconds"),
        ('[notify]\ncommand = "notify-send"\n', 2, 11, "must be an array of strings"),
        ("[dashboard]\nrefresh = 0.01\n", 2, 11, "is 0.01; expected 0.1 to 3600 seconds"),
        ("[dashboard]\nrefresh = 1e9\n", 2, 11, "expected 0.1 to 3600 seconds"),
        ("[watch]\npoll_interval = 0\n", 2, 17, "is 0.0; expected 0.1 to 3600 seconds"),
        ('[worker]\nmemory = "1k"\n', 2, 10, "at least '64m'"),
        ("[worker]\ncpus = 0.001\n", 2, 8, "at least 0.01"),
        ("[worker]\npids = 1\n", 2, 8, "at least 64"),
    ],
)
def test_ranges_are_errors_with_position_and_the_accepted_range(
    text: str, line: int, column: int, needle: str
) -> None:
    e = _error(text)
    assert (e.line, e.column) == (line, column), e.message
    assert e.message.startswith(f"c.toml:{line}:{column}: ") and needle in e.message


def test_range_errors_from_the_environment() -> None:
    e = _error("", {"HAL9000_DASHBOARD_REFRESH": "0"})
    assert "HAL9000_DASHBOARD_REFRESH" in e.message and "0.1 to 3600" in e.message


def test_next_waiting_is_a_key_like_the_others() -> None:
    assert Config().keys.next_waiting == "A"
    e = _error('[keys]\nnext_waiting = "N"\n')
    assert "c.toml:2:16: [keys].next_waiting is 'N', which [keys].new_session also uses" in (
        e.message
    )


# -- tmux's key grammar ---------------------------------------------------------------------

GOOD = [
    "C-b", "C-a", "^B", "^b", "C-Space", "M-a", "M-A", "S-a", "C-M-x", "c-m-x", "C-S-Up",
    "M-S-Left", "F1", "F12", "C-F5", "Up", "pgup", "PageUp", "PPage", "PgDn", "NPage", "IC",
    "Insert", "DC", "Delete", "Home", "End", "Tab", "BTab", "Space", "Enter", "Escape",
    "BSpace", "KP0", "KP9", "KP/", "KP*", "KP-", "KP+", "KP.", "KPEnter", "kp5", "N", "%", "-",
    "C--", "C-1", "C-?", "C-@", "C-[", "C-_", "C-/", "é", "M-é", "^", "~", "\"", "M-~",
]  # fmt: skip
BAD = [
    "Ctrl-B", "ctrl-b", "Alt-a", "C-", "M-", "", " ", "a b", "C-~", "C-$", "C-%", "C-&", "C-*",
    "C-{", "C-|", "C-}", 'C-"', "^~", "F13", "F0", "Up2", "X-a", "a-", "C-ab", "None", "Any",
    ";", "C-;", "M-;", "\t", "\x01", "\x7f", "C-\x7f", "KP10", "KPEnterx",
]  # fmt: skip


@pytest.mark.parametrize("key", GOOD)
def test_keys_tmux_can_bind_are_accepted(key: str) -> None:
    assert tmux_key(key)
    parse_config(f"[keys]\nprefix = {_toml(key)}\n")


@pytest.mark.parametrize("key", BAD)
def test_keys_tmux_cannot_bind_are_errors_naming_the_accepted_forms(key: str) -> None:
    assert not tmux_key(key)
    e = _error(f"[keys]\nshell = {_toml(key)}\n")
    assert e.message.startswith("c.toml:2:9: [keys].shell is ")
    assert "which tmux cannot bind; use a tmux key" in e.message and "'C-b'" in e.message


def _toml(s: str) -> str:
    import json

    return json.dumps(s)  # a JSON string is a TOML basic string


@pytest.fixture(scope="module")
def tmux() -> Iterator[list[str]]:
    if shutil.which("tmux") is None:
        pytest.skip("no tmux")
    argv = ["tmux", "-L", f"hal-keys-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
    subprocess.run([*argv, "new-session", "-d", "-s", "k"], check=True)
    yield argv
    subprocess.run([*argv, "kill-server"], check=False)


def _tmux_binds(argv: list[str], key: str) -> bool:
    bind = subprocess.run(
        [*argv, "bind-key", "-T", "halcheck", key, "display-message", "x"],
        capture_output=True,
    )
    prefix = subprocess.run([*argv, "set-option", "-g", "prefix", key], capture_output=True)
    return bind.returncode == 0 and prefix.returncode == 0


def test_what_we_accept_real_tmux_binds_and_what_it_refuses_we_refuse(tmux: list[str]) -> None:
    """The grammar against the real tmux (the parent's is Debian bookworm's 3.3a): every
    accepted key binds and sets as the prefix; every key tmux refuses is refused. (We refuse
    a few tmux takes and nobody means: None, Any, control characters.)"""
    modifiers = ["", "C-", "M-", "S-", "C-M-", "^"]
    chars = [chr(c) for c in range(33, 127)] + ["é", "Space", "Enter", "Up", "F5", "KP7"]
    candidates = [m + c for m in modifiers for c in chars] + GOOD + BAD[:-6]
    candidates += [n for n in TMUX_NAMED_KEYS] + ["C-" + n for n in TMUX_NAMED_KEYS]
    wrong = []
    for key in dict.fromkeys(c for c in candidates if c and "\x00" not in c):
        ours, theirs = tmux_key(key), _tmux_binds(tmux, key)
        if ours and not theirs:
            wrong.append(f"accepted {key!r}, tmux refuses it")
        # (a trailing ";" separates commands: tmux binds what is left, '^;' binds '^')
        if theirs and not ours and key not in ("None", "Any", " ") and not key.endswith(";"):
            wrong.append(f"refused {key!r}, tmux binds it")
    assert not wrong, "\n".join(wrong)


# -- how changes apply ----------------------------------------------------------------------


def test_notify_and_resume_changes_are_live_groups() -> None:
    from hal_common.config_diff import diff

    old = parse_config("")
    new = parse_config(
        '[notify]\ncommand = ["x"]\ndebounce = 5\n[worker]\nresume = false\n'
        '[keys]\nnext_waiting = "B"\n'
    )
    changes = diff(old, new)
    assert changes.notify == ("notify.command", "notify.debounce")
    assert changes.resume == ("worker.resume",)
    assert changes.keys == ("keys.next_waiting",)
    assert changes.worker_template == () and changes.live and not changes.restart_needed


def test_a_changed_literal_env_value_is_a_template_change() -> None:
    from hal_common.config_diff import diff

    a = parse_config('[worker.env]\nURL = "http://a"\n')
    b = parse_config('[worker.env]\nURL = "http://b"\n')
    assert diff(a, b).worker_template == ("worker.env",)


def test_config_set_writes_an_env_table_inline() -> None:
    from hal_common.config_edit import set_value, typed_value

    value = typed_value(("worker", "env"), '{ ANTHROPIC_BASE_URL = "http://127.0.0.1:9" }')
    text = set_value(
        '[worker]\nmemory = "2g"\n\n[keys]\nprefix = "C-a"\n', ("worker", "env"), value
    )
    assert 'env = {ANTHROPIC_BASE_URL = "http://127.0.0.1:9"}\n\n[keys]' in text
    assert parse_config(text).worker == WorkerConfig(
        memory="2g", env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    )
