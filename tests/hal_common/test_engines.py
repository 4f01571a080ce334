"""Which engine claudy uses: the URL and context checks, and the precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal_common.config import load_config
from hal_common.engines import EngineChoice, check_engine, choose, url_problem
from hal_common.errors import HalError, UsageError


@pytest.mark.parametrize(
    "url",
    [
        "unix:///var/run/docker.sock",
        "ssh://root@10.0.0.2",
        "ssh://me@build-box.example:2222",
        "ssh://buildbox",
        "tcp://10.0.0.2:2376",
        "tcp://docker.example:2376/",
    ],
)
def test_engine_urls_that_are_accepted(url: str) -> None:
    assert url_problem(url) is None
    assert check_engine(url) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://h:2375", "is not an engine; expected unix:///"),
        ("unix://relative.sock", "needs an absolute path"),
        ("ssh://me@h/path", "takes no path"),
        ("ssh://me@h:port", "not a number from 1 to 65535"),
        ("ssh://me:secret@h", "holds a password"),
        ("ssh://b@d user@h", "is not a user name"),
        ("ssh://", "names no host"),
        ("tcp://h", "needs a port"),
        ("tcp://u@h:2376", "takes no user"),
    ],
)
def test_engine_urls_that_are_refused_say_why(url: str, words: str) -> None:
    problem = url_problem(url)
    assert problem is not None and words in problem, problem


def test_a_context_name_or_nothing_is_an_engine_too() -> None:
    assert check_engine("") is None
    assert check_engine("buildbox") is None and check_engine("desktop-linux") is None
    problem = check_engine("not a name")
    assert problem is not None and "the name of a Docker context" in problem


def test_precedence_flag_then_env_then_config_then_default() -> None:
    env = {"DOCKER_HOST": "tcp://envhost:2376"}
    cfg = "ssh://me@cfg"
    assert choose("ssh://me@flag", None, env, cfg) == EngineChoice("ssh://me@flag", "", "--engine")
    assert choose(None, "ctx", env, cfg) == EngineChoice("", "ctx", "--context")
    assert choose(None, None, env, cfg) == EngineChoice("tcp://envhost:2376", "", "DOCKER_HOST")
    assert choose(None, None, {"DOCKER_CONTEXT": "c"}, cfg).context == "c"
    assert choose(None, None, {}, cfg) == EngineChoice("ssh://me@cfg", "", "[parent] engine")
    assert choose(None, None, {}, "ctx").context == "ctx"
    assert choose(None, None, {}, "") == EngineChoice()
    assert choose("ctx", None, {}, "").context == "ctx"  # --engine NAME: a context


def test_bad_choices_are_usage_errors_that_say_what_to_give() -> None:
    with pytest.raises(UsageError, match="both name an engine"):
        choose("ssh://a", "b", {}, "")
    with pytest.raises(UsageError, match="--context ssh://a is a URL") as e:
        choose(None, "ssh://a", {}, "")
    assert e.value.hint == "use --engine ssh://a"
    with pytest.raises(UsageError, match=r"^DOCKER_HOST is not an engine") as e:
        choose(None, None, {"DOCKER_HOST": "nope://x"}, "")
    assert e.value.hint is not None and "ssh://user@host" in e.value.hint


def test_the_docker_cli_and_children_get_the_same_engine() -> None:
    env = {"DOCKER_CONTEXT": "other", "PATH": "/bin"}
    ssh = EngineChoice(host="ssh://me@h", origin="--engine")
    assert ssh.cli_args() == ["-H", "ssh://me@h"]
    assert ssh.env(env) == {"DOCKER_HOST": "ssh://me@h", "PATH": "/bin"}
    ctx = EngineChoice(context="c", origin="--context")
    assert ctx.cli_args() == ["--context", "c"]
    assert ctx.env({"DOCKER_HOST": "unix:///x"}) == {"DOCKER_CONTEXT": "c"}
    assert EngineChoice().cli_args() == [] and EngineChoice().env(env) == env


def test_the_config_key_is_checked_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[parent]\nengine = "http://h"\n')
    with pytest.raises(HalError, match=r"config.toml:2:\d+: \[parent\]\.engine is not an engine"):
        load_config(path, {})
    path.write_text('[parent]\nengine = "ssh://me@box"\n')
    assert load_config(path, {}).parent.engine == "ssh://me@box"
