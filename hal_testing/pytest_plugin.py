"""The tests' fixtures, on real engines: the test engine and the project's images, temporary
parent layouts, `hal-agent`'s commands and loop, parents driven through `claudy`, projects
whose workers are removed afterwards. Registered by tests/conftest.py.

A missing engine skips the tests that need it, saying why; with HAL_REQUIRE_ENGINES=1 (CI)
those skips become failures, so CI cannot go green without the real thing. A terminal for
`claudy` is libtmux's `server` fixture (its own plugin: a private socket, killed afterwards).

    fixture          scope     what
    docker_host      session   HAL_TEST_DOCKER_HOST (scripts/test starts a private dockerd)
    dclient          session   a docker-py client of it; leftovers of crashed runs swept
    built_images     session   the real images, built by claudy's build path: ids by role
    labelled         function  labels for containers a test makes; they go by label after
    parent_layout    function  a ParentLayout under tmp_path: the product takes it as is
    cfg_file         function  a config file under tmp_path named by HAL9000_CONFIG
    projects         function  project dirs under tmp_path; their workers removed after
    agent_loop       function  start(config) -> the parent's loop in a thread, on parent_layout
    hal_agent        module    hal-agent's commands on a layout, with its tmux server
    host_parents     module    make(...) -> a parent container driven through claudy
    remote_host      module    a container running sshd and its own dockerd: ssh://root@ADDR
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import docker
import pytest

from hal_common import labels
from hal_common.layout import ParentLayout
from hal_testing import claude, engine
from hal_testing.agent import AgentCommands, AgentLoop, agent_env
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.host import HostParent
from hal_testing.layout import parent_layout as make_layout
from hal_testing.remote_host import RemoteHost
from hal_testing.remote_host import remote_host as remote_host_of

REQUIRE = os.environ.get("HAL_REQUIRE_ENGINES") == "1"


def missing(reason: str) -> NoReturn:
    """Skip, or fail under CI, when a real engine is missing."""
    if REQUIRE:
        pytest.fail(f"required engine missing: {reason}", pytrace=False)
    pytest.skip(reason)


def need_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(why)


# -- the engine ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The engine the tests drive: HAL_TEST_DOCKER_HOST (scripts/test starts a private one)."""
    host = os.environ.get("HAL_TEST_DOCKER_HOST")
    if not host:
        missing("HAL_TEST_DOCKER_HOST is not set (scripts/test starts a private dockerd)")
    return str(host)


@pytest.fixture(scope="session")
def dclient(docker_host: str) -> docker.DockerClient:
    try:
        client = engine.connect(docker_host)
    except engine.EngineMissing as e:
        missing(str(e))
    engine.sweep(client)  # what crashed runs left: everything labelled as ours by a test
    return client


@pytest.fixture(scope="session")
def built_images(dclient: docker.DockerClient) -> dict[str, str]:
    """The project's real images, built through claudy's own build path (offline base),
    and the shared Claude Code store their workers mount (from the host cache)."""
    try:
        claude.seed_store()
    except RuntimeError as e:
        missing(str(e))
    return engine.build_images(dclient)


@pytest.fixture
def labelled(dclient: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Labels for containers a test creates; they are removed by label afterwards."""
    mark = {engine.TEST_LABEL: str(os.getpid()), labels.MANAGED: "true"}
    yield mark
    engine.sweep(dclient, str(os.getpid()))


# -- the parent's paths ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _short_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/sh")


def remove_layout(layout: ParentLayout, base: Path) -> None:
    """What a test's layout left: `base`, and its run directory when that had to be short."""
    if not layout.run_dir.is_relative_to(base):
        shutil.rmtree(layout.run_dir, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def parent_layout(tmp_path: Path) -> Iterator[ParentLayout]:
    """The parent's paths under tmp_path; its inner engine the test engine, if there is one.
    In-process code is handed it; nothing is patched."""
    layout = make_layout(
        tmp_path / "parent",
        os.environ.get("HAL_TEST_DOCKER_HOST", ""),
        roots=(tmp_path / "projects",),  # the `projects` fixture's root
    )
    yield layout
    if not layout.run_dir.is_relative_to(tmp_path):  # a short run directory of its own
        shutil.rmtree(layout.run_dir, ignore_errors=True)


@pytest.fixture
def cfg_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file (not yet written) named by HAL9000_CONFIG; no other HAL9000_* set."""
    path = tmp_path / "hal9000" / "config.toml"
    monkeypatch.setenv("HAL9000_CONFIG", str(path))
    for name in [n for n in os.environ if n.startswith("HAL9000_") and n != "HAL9000_CONFIG"]:
        monkeypatch.delenv(name)
    return path


# -- workers, hal-agent, parents -------------------------------------------------------------


@pytest.fixture
def projects(tmp_path: Path, dclient: docker.DockerClient) -> Iterator[engine.Projects]:
    """Projects under tmp_path/projects; their workers are removed afterwards."""
    found = engine.Projects(tmp_path / "projects")
    yield found
    engine.remove_workers_under(dclient, found.root)


@pytest.fixture
def agent_loop(
    parent_layout: ParentLayout,
    docker_host: str,
    built_images: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], AgentLoop]]:
    """`start(config_text)`: the parent's loop in a thread on `parent_layout`, the test engine
    its inner engine, its tmux server on the layout's socket; shut down afterwards, and no
    thread left behind but the engine's streams. The process's environment is
    `agent_env(parent_layout)` meanwhile: the tmux server the loop starts inherits it, so
    `hal-agent` in its panes (the dashboard, the keys) runs on the layout too."""
    for key, value in agent_env(parent_layout).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TMUX", raising=False)
    started: list[AgentLoop] = []

    def start(config: str) -> AgentLoop:
        parent_layout.config_file.parent.mkdir(parents=True, exist_ok=True)
        parent_layout.config_file.write_text(config)
        loop = AgentLoop(parent_layout, docker_host)
        started.append(loop)
        loop.start()
        return loop

    yield start
    for loop in started:
        leaked = loop.stop()
        assert not leaked, leaked


@pytest.fixture(scope="module")
def hal_agent(
    tmp_path_factory: pytest.TempPathFactory,
    docker_host: str,
    dclient: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[AgentCommands]:
    """`hal-agent` as in the parent, on a layout of its own with the test engine inside and a
    tmux server started as `hal-agent run` starts it; workers of 512m, no built-in services."""
    need_root("needs root (project dirs are chowned to a test uid)")
    base = tmp_path_factory.mktemp("agent")
    layout = make_layout(base, docker_host, roots=(base / "p",))
    config = '[worker]\nmemory = "512m"\n\n[dashboard]\nrefresh = 0.5\n' + NO_BUILTIN_SERVICES
    agent = AgentCommands.create(layout, base / "p", dclient, config)
    agent.start_tmux()
    yield agent
    agent.close()
    remove_layout(layout, base)


@pytest.fixture(scope="module")
def host_parents(
    tmp_path_factory: pytest.TempPathFactory,
    docker_host: str,
    dclient: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[Callable[..., HostParent]]:
    """`make(prefix, **create_kwargs)`: a parent named `hal9000-PREFIX-…` on the test engine,
    driven through claudy (see `HostParent.create`); `claudy down --volumes` afterwards."""
    need_root("the end-to-end tests chown project dirs and need root")
    made: list[HostParent] = []

    def make(prefix: str, **kw: Any) -> HostParent:
        tag = uuid.uuid4().hex[:6]
        base = tmp_path_factory.mktemp(f"hal-{prefix}")
        p = HostParent.create(dclient, docker_host, base, f"hal9000-{prefix}-{tag}", **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.down()


@pytest.fixture(scope="module")
def remote_host(
    tmp_path_factory: pytest.TempPathFactory, dclient: docker.DockerClient
) -> Iterator[RemoteHost]:
    """A "remote host" (hal_testing/remote_host.py): a container of the test engine running
    sshd and its own dockerd, on a network of its own, reached at `.url` (ssh://root@ADDR)
    with a key pair and known_hosts the test made; `ssh` on PATH is the wrapper that uses
    them, for this process (docker-py's ssh) and the claudy it runs."""
    need_root("the remote host's ssh set-up and the e2e tests' projects need root")
    ssh_dir = Path(tempfile.mkdtemp(prefix="hal-ssh-"))  # short: ControlPath sockets
    try:
        with remote_host_of(dclient, ssh_dir) as host:
            yield host
    except RuntimeError as e:
        missing(str(e))
    finally:
        shutil.rmtree(ssh_dir, ignore_errors=True)


# -- engines that are missing ----------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("tmux") is None:
        for item in items:
            if "tmux" in item.keywords or "e2e" in item.keywords:
                item.add_marker(pytest.mark.usefixtures("_need_tmux"))


@pytest.fixture
def _need_tmux() -> None:
    missing("tmux is not installed")
