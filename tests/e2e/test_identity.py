"""End to end, issue 15: your identity, scoped. A real parent made by claudy, workers of the
real standard image, a real ssh-agent of the host user, and a host git identity set through
a temporary GIT_CONFIG_GLOBAL.

- every worker's `git config user.email` is the host's;
- the GitHub token (`claudy identity github-token`, on stdin) reaches the opted-in project's
  worker through `git credential fill` for github.com, and not the other project's;
- the host's SSH agent answers `ssh-add -l` in the opted-in worker only;
- the canary sweep: the token is in no inspect data, env, argv, log, layer or tmux screen,
  only in the parent's private store and the opted-in worker's own copy.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hal_common.naming import session_name
from hal_testing import canary
from hal_testing.engine import GID, UID
from hal_testing.host import IMAGE, HostParent
from hal_testing.schemas import validate
from hal_testing.ssh_agent import running_agent

pytestmark = pytest.mark.e2e

CANARY = f"ghp_CANARY{uuid.uuid4().hex}"
EMAIL = f"host-{uuid.uuid4().hex[:8]}@example.test"
FILL = "printf 'protocol=https\\nhost=github.com\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill"


@pytest.fixture(scope="module")
def agent() -> Iterator[tuple[Path, str]]:
    with running_agent() as found:
        yield found


@pytest.fixture(scope="module")
def ident(host_parents: Callable[..., HostParent], agent: tuple[Path, str]) -> HostParent:
    """A parent for a host user with a git identity and an SSH agent; `mine` is opted in to
    both, `theirs` to nothing."""
    s = host_parents(
        "id",
        worker='image = "hal9000/worker:standard"\nmemory = "1g"\n',
        home="home",
        env={"SUDO_UID": str(UID), "SUDO_GID": str(GID), "SSH_AUTH_SOCK": str(agent[0])},
    )
    gitconfig = s.base / "host.gitconfig"
    gitconfig.write_text(f'[user]\n\tname = "Host User"\n\temail = {EMAIL}\n')
    s.env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    mine = s.root / "mine"
    with s.config_file.open("a") as fh:
        fh.write(f'\n[identity]\nssh_agent = ["{mine}"]\ngithub_token = ["{mine}"]\n')
    return s


def test_every_worker_gets_the_hosts_git_identity(ident: HostParent) -> None:
    for name in ("mine", "theirs"):
        proj = ident.project(name)
        res = ident.claudy("-d", str(proj))
        assert res.returncode == 0, res.stderr + res.stdout
        assert ident.in_worker(proj, "git", "config", "user.email") == EMAIL
        assert ident.in_worker(proj, "git", "config", "user.name") == "Host User"


def test_the_token_reaches_the_opted_in_worker_only(ident: HostParent) -> None:
    res = ident.claudy("identity", "github-token", input=CANARY + "\n")
    assert res.returncode == 0, res.stderr + res.stdout
    assert CANARY not in res.stdout + res.stderr
    mine, theirs = ident.project("mine"), ident.project("theirs")
    got = ident.in_worker(mine, "sh", "-c", FILL, check=False)
    assert f"password={CANARY}" in got
    assert CANARY not in ident.in_worker(theirs, "sh", "-c", FILL, check=False)
    status = ident.claudy("identity", "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    validate("claudy-identity-status", doc)
    assert doc["parent"]["github_token"]["present"] and CANARY not in status.stdout
    assert doc["parent"]["git"]["email"] == EMAIL and doc["parent"]["ssh_agent"] is True


def test_the_ssh_agent_answers_in_the_opted_in_worker_only(
    ident: HostParent, agent: tuple[Path, str]
) -> None:
    mine, theirs = ident.project("mine"), ident.project("theirs")
    assert agent[1] in ident.in_worker(mine, "ssh-add", "-l", check=False)
    out = ident.in_worker(theirs, "sh", "-c", "ssh-add -l 2>&1; echo $SSH_AUTH_SOCK", check=False)
    assert "Could not open a connection to your authentication agent" in out, out
    assert agent[1].split()[1] not in out
    # ssh leaves through the egress proxy (hal-connect), which decides: github.com is
    # allowed on 443 only by default, so port 22 is refused until the user allows it
    ssh = "ssh -o BatchMode=yes -T git@github.com 2>&1; echo rc=$?"
    out = ident.in_worker(mine, "sh", "-c", ssh, check=False)
    assert "hal-connect: the egress proxy refused github.com:22: HTTP/1.1 403" in out, out
    assert "port not allowed" in out and "rc=255" in out


def test_the_github_canary_is_nowhere_but_its_two_files(ident: HostParent) -> None:
    """The sweep of tests/e2e/test_shared_services.py, for the GitHub token: inspect data,
    logs and histories of every container and image in the parent, every process's env
    and argv (the workers' too), every file, the tmux screens; the host's processes."""
    hits = canary.sweep(ident, CANARY)
    mine = IMAGE.worker_run(session_name(str(ident.project("mine"))))
    expected = {f"HIT file {IMAGE.identity_dir}/github-token", f"HIT file {mine}/github-token"}
    assert set(hits) == expected and len(hits) == 2, "\n".join(hits)
    modes = ident.sh(f"stat -c '%a %u' {IMAGE.identity_dir}/github-token {mine}/github-token")
    assert modes.splitlines() == ["600 0", f"400 {UID}"]
