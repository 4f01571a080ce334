"""The project file: parsing with file:line:col, what widens, the merge, limits on reload."""

from __future__ import annotations

import json

import pytest

from hal_common.config import parse_config
from hal_common.errors import ConfigError
from hal_common.project_config import (
    Untrusted,
    limits_with,
    merge,
    parse_project,
    sha256,
    widening,
)

SRC = "/p/.hal9000.toml"
USER = parse_config(
    '[worker]\nmemory = "2g"\ncpus = 2\npids = 512\n[network]\nallow = ["a.example"]\n'
)


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_project(text.encode(), SRC)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse(text)
    return e.value.message


def test_a_good_file_gives_its_keys() -> None:
    pf = parse(
        '[worker]\nprofile = "python"\nsetup = "make dev"\nmemory = "1g"\n'
        '[worker.env]\nFOO = "bar"\n[network]\nallow = ["b.example:8443"]\n'
    )
    assert pf.profile == "python" and pf.setup == "make dev"
    assert pf.worker == {"memory": "1g"} and pf.env == {"FOO": "bar"}
    assert pf.allow == ("b.example:8443",)
    assert pf.at["worker.memory"] == f"{SRC}:4:10"


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('[worker]\nmemory = "lots"\n', "2:10", "not a memory size"),
        ("[worker]\ncpus = 0\n", "2:8", "at least"),
        ('[network]\nmode = "open"\n', "2:1", "[network].mode is the user's"),
        ('[parent]\nname = "x"\n', "1:1", "[parent] is the user's"),
        ('[keys]\nprefix = "C-a"\n', "1:1", "[keys] is the user's"),
        ('[worker]\nenv = ["GITHUB_TOKEN"]\n', "2:7", "only the user's config may pass"),
        ('[worker]\nmemroy = "1g"\n', "2:1", "did you mean memory?"),
        ('[worker]\ncommand = ["sh"]\n', "2:1", "is the user's to set"),
        ('[worker]\nprofile = "rust"\n', "2:11", "expected one of"),
        ('[worker]\ndockerfile = "../x/Dockerfile"\n', "2:14", "inside the repository"),
        ('[network]\nallow = ["ok.example", "bad..name"]\n', "2:24", "bad entry"),
        ('[worker]\nimage = "x"\nprofile = "go"\n', "3:1", "both name the worker's image"),
        ("[worker\n", "1:8", ""),
    ],
)
def test_bad_files_name_their_line(text: str, where: str, words: str) -> None:
    msg = error(text)
    assert msg.startswith(f"{SRC}:{where}:"), msg
    assert words in msg


def test_every_problem_is_listed() -> None:
    msg = error('[worker]\nmemory = "x"\n[network]\nmode = "open"\n')
    assert len(msg.splitlines()) == 2


def test_not_utf8_is_refused() -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_project(b"\xff\xfe", SRC)


def test_what_widens() -> None:
    pf = parse(
        '[worker]\nmemory = "4g"\ncpus = 1\npids = 600\nimage = "evil/img"\n'
        '[network]\nallow = ["a.example", "api.anthropic.com:443", "c.example"]\n'
    )
    found = widening(pf, USER)
    text = "\n".join(found)
    assert "'c.example'" in text and "'a.example'" not in text  # the user's own: no widening
    assert "api.anthropic.com" not in text  # a default
    assert "[worker].memory '4g' is above yours" in text
    assert "cpus" not in text  # lower
    assert "[worker].pids 600" in text
    assert "not a built-in image" in text
    assert found[0].startswith(f"{SRC}:")


def test_what_does_not_widen() -> None:
    pf = parse(
        '[worker]\nprofile = "node"\nsetup = "npm ci"\nmemory = "1g"\n[worker.env]\nX = "1"\n'
    )
    assert widening(pf, USER) == []
    cfg, overlay = merge(USER, pf, "/p", None)
    assert cfg.worker.image == "hal9000/worker:node"
    assert cfg.worker.memory == "1g" and cfg.worker.cpus == 2.0
    assert overlay.env == {"X": "1"} and overlay.setup == "npm ci"
    assert overlay.base == USER.worker and not overlay.trusted


def test_widening_needs_the_trusted_hash() -> None:
    data = b'[network]\nallow = ["c.example"]\n[worker]\nmemory = "8g"\n'
    pf = parse_project(data, SRC)
    with pytest.raises(Untrusted) as e:
        merge(USER, pf, "/p", None)
    assert "claudy trust /p" in e.value.hint and "not trusted" in e.value.message
    with pytest.raises(Untrusted, match="changed since you trusted it"):
        merge(USER, pf, "/p", sha256(b"older content"))
    cfg, overlay = merge(USER, pf, "/p", sha256(data))
    assert overlay.trusted and overlay.allow == ("c.example",)
    assert cfg.worker.memory == "8g"
    label = json.loads(overlay.label())
    assert label == {
        "sha256": sha256(data),
        "trusted": True,
        "limits": {"memory": "8g"},
        "allow": ["c.example"],
    }


def test_no_file_changes_nothing() -> None:
    cfg, overlay = merge(USER, None, "/p", None)
    assert cfg is USER and overlay.label() == ""


def test_limits_on_reload() -> None:
    low = json.dumps({"trusted": False, "limits": {"memory": "1g", "pids": 100}})
    high = json.dumps({"trusted": True, "limits": {"memory": "8g"}})
    user = USER.worker
    assert limits_with(user, low).memory == "1g" and limits_with(user, low).pids == 100
    assert limits_with(user, high).memory == "8g"
    # the user lowers theirs below an untrusted project's: the user's wins
    tight = parse_config('[worker]\nmemory = "512m"\n').worker
    assert limits_with(tight, low).memory == "512m"
    assert limits_with(user, "").memory == "2g"
    assert limits_with(user, "not json").memory == "2g"
