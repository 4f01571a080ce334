"""The quick entry's hint: which command lines it tries, its file format, what still holds."""

from __future__ import annotations

import json

import pytest

from host_shim.core.hint import (
    COMMANDS,
    FORWARDED,
    TOP_OPTIONS,
    Hint,
    engine_socket,
    engine_words,
    env_subset,
    hint_key,
    inspect_argv,
    inspected_lines,
    pinned,
    quick_candidate,
    remote_engine,
    same_engine,
    same_remote,
    still_holds,
)

PARENT_ID = "ab" * 32
PARENT_IMAGE = "sha256:" + "cd" * 32
WORKER_IMAGE = "sha256:" + "ef" * 32
ID, P, W = PARENT_ID, PARENT_IMAGE, WORKER_IMAGE


def hint(**kw: object) -> Hint:
    fields: dict[str, object] = {
        "env": {"HOME": "/home/u"},
        "stamps": (("/home/u/.config/hal9000/config.toml", (1, 2, 3, 4)), ("/gone", None)),
        "resolved": (("/home/u", "/home/u"),),
        "projects": {"/home/u/src/p": "p-12345678"},
        "parent": "hal9000-parent",
        "parent_id": PARENT_ID,
        "parent_image": "hal9000/parent:0.1.0",
        "parent_image_id": PARENT_IMAGE,
        "worker_image": "hal9000/worker:minimal",
        "worker_image_id": WORKER_IMAGE,
        "argv": ("exec", "-it", "hal9000-parent", "sh", "-c", "script"),
    }
    fields.update(kw)
    return Hint(**fields)  # type: ignore[arg-type]


def test_only_claudy_and_claudy_dir_are_tried() -> None:
    assert quick_candidate([]) and quick_candidate(["."]) and quick_candidate(["src/p"])
    for words in (["-d", "."], [".", "x"], ["--help"], ["ls"], ["build"], ["~/p"], [""]):
        assert not quick_candidate(words), words


def test_shell_completion_is_the_full_paths() -> None:
    from host_shim.core.hint import completing

    assert completing({"_CLAUDY_COMPLETE": "bash_complete"}) and not completing({"HOME": "/"})


def test_the_words_are_the_click_groups() -> None:
    """A new claudy command must be known here, or the quick entry takes it for a directory."""
    from host_shim.commands import cli

    assert set(cli.main.commands) == set(COMMANDS) | set(FORWARDED)
    assert not set(COMMANDS) & set(FORWARDED)
    assert cli.FORWARDED == FORWARDED and "--help" in TOP_OPTIONS


def test_a_hint_round_trips_and_anything_else_is_no_hint() -> None:
    h = hint()
    assert Hint.loads(h.dumps()) == h
    assert Hint.loads(b"") is None and Hint.loads(b"not marshal") is None
    assert Hint.loads(json.dumps({"v": 1}).encode()) is None
    assert Hint.loads(hint(parent="-it").dumps()) is None  # not a name for a URL or an argv
    assert Hint.loads(hint(worker_image="x y").dumps()) is None
    assert Hint.loads(hint(projects=["p"]).dumps()) is None
    assert Hint.loads(hint(argv=()).dumps()) is None
    assert h.same_but_projects(hint(projects={})) and not h.same_but_projects(hint(parent="x"))


def test_the_environment_it_depends_on() -> None:
    env = {"HOME": "/h", "DOCKER_HOST": "unix:///d", "HAL9000_X": "1", "PATH": "/bin", "TERM": "x"}
    assert env_subset(env) == {"HOME": "/h", "DOCKER_HOST": "unix:///d", "HAL9000_X": "1"}
    assert hint_key(env) == hint_key({**env, "PATH": "/usr/bin"})
    assert hint_key(env) != hint_key({**env, "HAL9000_X": "2"})
    assert engine_socket({}) == "/var/run/docker.sock"
    assert engine_socket({"DOCKER_HOST": "unix:///tmp/d.sock"}) == "/tmp/d.sock"
    assert engine_socket({"DOCKER_HOST": "tcp://h:2376"}) is None
    assert engine_socket({"DOCKER_TLS_VERIFY": "1"}) is None
    # a context's engine (not the default one): the full path resolves it
    assert engine_socket({"DOCKER_CONTEXT": "box"}) is None
    assert engine_socket({"DOCKER_CONTEXT": "default"}) == "/var/run/docker.sock"


def test_a_hint_attaches_only_on_the_engine_it_was_made_on() -> None:
    h = hint(engine="unix:///var/run/docker.sock")
    assert same_engine(h, "/var/run/docker.sock")
    assert not same_engine(h, "/tmp/other.sock")
    assert not same_engine(hint(engine="ssh://me@box"), "/var/run/docker.sock")
    assert not same_engine(hint(), "/var/run/docker.sock")  # made before engines were recorded
    assert Hint.loads(h.dumps()) == h


def _container(id_: str, image: str, running: bool) -> bytes:
    state = {"Status": "running" if running else "exited", "Running": running, "Paused": False}
    body = {"Id": id_, "Created": "x", "State": state, "Image": image,
            "Config": {"Labels": {"x": '"Image":"' + PARENT_IMAGE + '"'}}}  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def _image(id_: str) -> bytes:
    return json.dumps({"Id": id_, "RepoTags": []}, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    ("parent", "tag", "worker", "holds"),
    [
        (_container(ID, P, True), _image(P), _image(W), True),
        (_container(ID, P, False), _image(P), _image(W), False),
        (_container("ff" * 32, P, True), _image(P), _image(W), False),
        (_container(ID, "sha256:00", True), _image(P), _image(W), False),
        (_container(ID, P, True), _image("sha256:11"), _image(W), False),
        (_container(ID, P, True), _image(P), _image("sha256:22"), False),
        (None, _image(P), _image(W), False),
        (_container(ID, P, True), _image(P), None, False),
    ],
)  # fmt: skip
def test_what_the_engine_says_still_holds(
    parent: bytes | None, tag: bytes | None, worker: bytes | None, holds: bool
) -> None:
    assert still_holds(hint(), parent, tag, worker) is holds


def test_a_label_cannot_fake_the_parents_image() -> None:
    """The label holds the hint's image id as text; its quotes are escaped in JSON."""
    assert not still_holds(
        hint(), _container(PARENT_ID, "sha256:00", True), _image(PARENT_IMAGE), _image(WORKER_IMAGE)
    )


def test_an_ssh_engine_named_first_is_tried_too() -> None:
    """`claudy --engine URL DIR` is tried in the environment the full path pins to URL (the
    hint's); on ssh:// (or DOCKER_HOST=ssh://…) the quick entry asks through the docker CLI."""
    assert engine_words(["--engine", "ssh://me@box", "p"]) == ("ssh://me@box", ["p"])
    assert engine_words(["--engine=ssh://me@box"]) == ("ssh://me@box", [])
    assert engine_words(["p"]) == (None, ["p"])
    assert engine_words(["--engine"]) is None and engine_words(["--engine="]) is None
    env = {"DOCKER_HOST": "unix:///x", "DOCKER_CONTEXT": "c", "HOME": "/h"}
    assert pinned(env, "ssh://me@box:2222") == {"DOCKER_HOST": "ssh://me@box:2222", "HOME": "/h"}
    assert pinned(env, None) is env
    assert remote_engine(pinned(env, "ssh://me@box:2222")) == "ssh://me@box:2222"
    assert remote_engine({"DOCKER_HOST": "ssh://me@box"}) == "ssh://me@box"
    for url in ("unix:///var/run/docker.sock", "tcp://box:2376", "ssh://-oProxyCommand=x", ""):
        assert remote_engine({"DOCKER_HOST": url}) is None, url
    assert remote_engine({}) is None
    h = hint(engine="ssh://me@box")
    assert same_remote(h, "ssh://me@box") and not same_remote(h, "ssh://me@other")
    assert not same_remote(hint(engine="unix:///var/run/docker.sock"), "ssh://me@box")


def test_one_cli_inspect_reads_as_the_three_api_inspects() -> None:
    """`docker inspect --format '{{json .}}'` prints each object as the engine encodes it, a
    line each: still_holds reads them as it reads the API's bodies."""
    argv = inspect_argv(hint())
    assert argv[-4:] == ["--", "hal9000-parent", "hal9000/parent:0.1.0", "hal9000/worker:minimal"]
    out = _container(ID, P, True) + _image(P) + _image(W)
    lines = inspected_lines(out)
    assert lines is not None and still_holds(hint(), *lines)
    assert inspected_lines(_container(ID, P, True) + _image(P)) is None  # one not found
    assert inspected_lines(b"") is None
