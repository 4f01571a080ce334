"""Attacks on the identity opt-ins, from inside real workers (the real standard image, a real
engine, a real ssh-agent, the parent's own code making the workers):

- a worker of a project not opted in looks everywhere for the GitHub token and the SSH
  agent: its environment, its files, its run directory, git's credential helpers;
- the opted-in worker tries to use the token toward another host through git's helper,
  and to change what it was given (its gitconfig, its token file);
- nothing of the token is in either container's inspect data or environment.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from hal_common.config import Config, WorkerConfig
from hal_common.identity import GitIdentity, Grants
from hal_common.layout import ParentLayout
from hal_testing.engine import GID, UID, Projects
from hal_testing.ssh_agent import running_agent
from parent_agent.adapters import identity_store, workers
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app.sessions import prepare_claude_home, ssh_agent_socket
from parent_agent.core.spec import worker_spec

pytestmark = pytest.mark.docker

CANARY = f"ghp_CANARY{uuid.uuid4().hex}"


@pytest.fixture
def agent() -> Iterator[tuple[Path, str]]:
    """A real ssh-agent of the worker user, holding one key."""
    with running_agent() as found:
        yield found


STANDARD = "hal9000/worker:standard"  # git, ssh-add and python3


@pytest.fixture(scope="module")
def standard(dclient: docker.DockerClient, built_images: dict[str, str]) -> None:
    """The standard worker image of this checkout (the layer cache keeps it quick)."""
    from rich.console import Console

    from host_shim.adapters import images
    from host_shim.adapters.engine import HostEngine

    cfg = Config(worker=WorkerConfig(image=STANDARD))
    console = Console(stderr=True)
    images.ensure_images(HostEngine(dclient), cfg, console, os.environ, only=frozenset({STANDARD}))


@pytest.fixture
def pair(
    dclient: docker.DockerClient,
    standard: None,
    parent_layout: ParentLayout,
    projects: Projects,
    agent: tuple[Path, str],
) -> tuple[Container, Container]:
    """(opted-in worker, another project's worker), made as `spawn` makes them."""
    layout = replace(parent_layout, ssh_agent_sock=agent[0])
    identity_store.save_git(layout, GitIdentity("Ada Host", "ada@host.test"))
    identity_store.save_token(layout, CANARY)
    engine = InnerEngine(dclient)
    out = []
    for name, grants in (("mine", Grants(True, True)), ("theirs", Grants())):
        project = projects.make(name)
        cfg = WorkerConfig(image=STANDARD, command=("sleep", "1000"),
                           memory="512m", cpus=1.0, pids=512)  # fmt: skip
        sock = ssh_agent_socket(layout, str(project)) if grants.ssh_agent else ""
        spec = worker_spec(str(project), cfg, UID, GID, {}, layout=layout, grants=grants,
                           ssh_agent=sock)  # fmt: skip
        prepare_claude_home(layout, spec.session, UID, GID, str(project))
        attrs = workers.ensure_worker(engine, spec, layout)
        out.append(dclient.containers.get(attrs["Id"]))
    return out[0], out[1]


def sh(c: Container, script: str) -> str:
    out = c.exec_run(["sh", "-c", script + "\ntrue"]).output
    assert isinstance(out, bytes)
    return out.decode(errors="replace")


FILL = "printf 'protocol=https\\nhost=%s\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill 2>&1"


def test_another_projects_worker_has_neither_the_token_nor_the_agent(
    pair: tuple[Container, Container], agent: tuple[Path, str]
) -> None:
    _mine, theirs = pair
    marker = CANARY.replace("CANARY", "CANAR[Y]")  # the hunt's own argv holds no marker
    hunt = sh(
        theirs,
        f"""
        env | grep -c SSH_AUTH_SOCK
        grep -rlsa --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev '{marker}' / | head
        grep -la '{marker}' /proc/[0-9]*/environ 2>/dev/null
        ls -A /etc/hal/run /run/hal-ssh 2>&1
        find / -xdev -type s 2>/dev/null | grep -v '^/tmp/hal-worker'
        ssh-add -l 2>&1
        {FILL % "github.com"}
        git config --show-origin --get-regexp 'credential.*' ; echo helpers=$?
        """,
    )
    assert CANARY not in hunt, hunt
    assert hunt.splitlines()[0] == "0"  # no SSH_AUTH_SOCK
    assert "github-token" not in hunt and "agent.sock" not in hunt
    assert "No such file or directory" in hunt  # /run/hal-ssh is not there
    assert "Could not open a connection to your authentication agent" in hunt
    assert agent[1].split()[1] not in hunt  # the key's fingerprint
    assert "helpers=1" in hunt  # no credential helper at all
    # its git identity is the host's all the same
    assert sh(theirs, "git config user.email").strip() == "ada@host.test"


def test_the_opted_in_worker_uses_them_for_github_only_and_cannot_change_them(
    pair: tuple[Container, Container], agent: tuple[Path, str]
) -> None:
    mine, _theirs = pair
    assert f"password={CANARY}" in sh(mine, FILL % "github.com")
    for other in ("evil.example", "github.com.evil.example", "gist.github.com"):
        assert CANARY not in sh(mine, FILL % other), other
    # the agent answers, with the host's key
    assert agent[1] in sh(mine, "ssh-add -l")
    # what it was given is read-only, and the token its user's alone
    tamper = sh(
        mine,
        """
        echo '[credential]' >> /etc/hal/run/gitconfig; echo gitconfig=$?
        echo x > /etc/hal/run/github-token; echo token=$?
        rm -f /run/hal-ssh/agent.sock; echo sock=$?
        stat -c '%a %u' /etc/hal/run/github-token
        """,
    )
    for what in ("gitconfig", "token", "sock"):
        assert f"{what}=" in tamper and f"{what}=0" not in tamper, tamper
    assert f"400 {UID}" in tamper


def test_no_container_holds_the_token_in_its_inspect_data(
    pair: tuple[Container, Container], dclient: docker.DockerClient
) -> None:
    for c in pair:
        attrs = dclient.api.inspect_container(str(c.id))
        assert CANARY not in json.dumps(attrs)
        env = attrs["Config"]["Env"]
        assert not any("github" in e.lower() and "token" in e.lower() for e in env), env
