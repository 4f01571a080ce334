"""`hal-agent send` against a real engine: text typed into a real worker's agent pane, as
from the keyboard, through the worker's own `hal-worker send` / `hal-worker keys`.

The worker's agent here is `cat` (what is typed echoes once, and once more after Enter), so
what arrived is read off the agent's own tmux pane."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import container_name
from hal_testing.agent import AgentCommands
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.layout import parent_layout as make_layout
from hal_testing.pytest_plugin import need_root, remove_layout

pytestmark = [pytest.mark.docker, pytest.mark.tmux]


@pytest.fixture(scope="module")
def agents(
    tmp_path_factory: pytest.TempPathFactory,
    docker_host: str,
    dclient: docker.DockerClient,
    built_images: dict[str, str],
) -> Iterator[AgentCommands]:
    """`hal-agent` on a layout of its own whose workers run `cat` as their agent."""
    need_root("needs root (project dirs are chowned to a test uid)")
    base = tmp_path_factory.mktemp("send")
    layout = make_layout(base, docker_host, roots=(base / "p",))
    config = '[worker]\nmemory = "512m"\ncommand = ["cat"]\n' + NO_BUILTIN_SERVICES
    agent = AgentCommands.create(layout, base / "p", dclient, config)
    agent.start_tmux()
    yield agent
    agent.close()
    remove_layout(layout, base)


def _pane(agents: AgentCommands, name: str) -> str:
    """The agent's pane in the worker's own tmux (hal-worker's socket and session)."""
    c = agents.dclient.containers.get(container_name(name))
    code, out = c.exec_run(["tmux", "-S", "/tmp/hal-worker.tmux", "capture-pane", "-p",
                            "-t", "=agent:"])  # fmt: skip
    return out.decode() if code == 0 and isinstance(out, bytes) else ""


def test_send_types_into_the_agent_then_presses_enter_and_keys(agents: AgentCommands) -> None:
    proj = agents.project("sendee")
    name = agents.ok("spawn", str(proj), "--no-attach").strip()
    assert retry_until(lambda: agents.agent_pid(name) != "", 15)
    # typed, no Enter: the terminal echoes it, cat has not read it yet
    agents.ok("send", name, "--no-enter", "hello", "there")
    assert retry_until(lambda: _pane(agents, name).count("hello there") == 1, 10)
    agents.ok("send", name, "--key", "Enter")  # a key by its tmux name
    assert retry_until(lambda: _pane(agents, name).count("hello there") == 2, 10)
    # Enter by default; a text that looks like an option, or like tmux key names, is text
    agents.ok("send", str(proj), "--", "--no-enter C-c Enter")  # the path names it too
    assert retry_until(lambda: _pane(agents, name).count("--no-enter C-c Enter") == 2, 10), _pane(
        agents, name
    )
    assert agents.state(name) == "running"  # no C-c reached cat


def test_send_says_why_it_cannot(agents: AgentCommands) -> None:
    res = agents.run("send", "nobody-00000000", "yes")
    assert res.returncode == 5 and "no worker named nobody-00000000" in res.stderr
    proj = agents.project("stopped")
    name = agents.ok("spawn", str(proj), "--no-attach").strip()
    res = agents.run("send", name)
    assert res.returncode == 2 and "nothing to send" in res.stderr
    agents.ok("stop", name)
    res = agents.run("send", name, "yes")
    assert res.returncode == 2 and "not running" in res.stderr and f"start {name}" in res.stderr
