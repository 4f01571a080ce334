"""End to end: claudy's forwarded commands and its worker-name completion against the real
parent (real images, Docker-in-Docker): the words reach hal-agent as typed, the global flags
with them, and Tab lists the parent's workers."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from hal_common.naming import session_name
from hal_testing.host import HostParent

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    return host_parents("cli")


def test_forwarded_commands_and_worker_completion(env: HostParent) -> None:
    proj = env.project("manners")
    name = session_name(str(proj))
    started = env.claudy("-d", str(proj))
    assert started.returncode == 0, started.stderr

    listed = env.claudy("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [w["name"] for w in json.loads(listed.stdout)] == [name]
    quiet = env.claudy("--no-color", "-q", "ls")  # -q goes on to hal-agent, NO_COLOR too
    assert quiet.returncode == 0, quiet.stderr
    assert name in quiet.stdout and "\x1b[" not in quiet.stdout + quiet.stderr
    bad = env.claudy("logs", "--no-such-option")  # hal-agent parses, in the parent
    assert bad.returncode == 2 and "No such option" in bad.stderr

    tab = env.claudy(_CLAUDY_COMPLETE="bash_complete", COMP_WORDS="claudy logs ", COMP_CWORD="2")
    assert tab.returncode == 0, tab.stderr
    assert tab.stdout.split() == [f"plain,{name}"]

    stopped = env.claudy("stop", name)  # claudy's stop with a NAME: hal-agent's
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped {name}" in stopped.stdout
    (row,) = json.loads(env.claudy("ls", "--json", "--all").stdout)
    assert row["state"] == "exited"
