"""`hal-agent` without a parent container: its commands run as subprocesses, and its loop runs
in-process, against the test engine (standing in for the inner one) and a private tmux server,
with the parent's paths in a temporary `ParentLayout`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import libtmux
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.config import Config, load_config
from hal_common.errors import ConfigError
from hal_common.layout import ParentLayout
from hal_common.naming import container_name
from hal_testing.engine import chown_project
from hal_testing.layout import layout_env

if TYPE_CHECKING:
    from parent_agent.adapters.engine import InnerEngine
    from parent_agent.core.snapshot import Snapshot


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """`os.environ` is `env` inside the block (for a tmux server started there to inherit)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def agent_env(layout: ParentLayout) -> dict[str, str]:
    """The environment `hal-agent` runs in on `layout`, and a tmux server whose panes run
    it: this process's, with the layout's `HAL_*` variables, this Python's `hal-agent` first
    on PATH, a plain shell and no outer tmux."""
    env = {
        **os.environ,
        **layout_env(layout),
        "SHELL": "/bin/sh",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("TMUX", None)
    return env


@dataclass
class AgentCommands:
    """`hal-agent COMMAND` as a user types it in the parent, on `layout`: its tmux server is
    started with the layout's environment (so the dashboard and key bindings run `hal-agent`
    on it too); projects are under `root`."""

    layout: ParentLayout
    root: Path
    dclient: docker.DockerClient
    env: dict[str, str] = field(default_factory=dict)
    view: str = ""  # the session of a test's tmux client

    @classmethod
    def create(
        cls, layout: ParentLayout, root: Path, dclient: docker.DockerClient, config: str | None
    ) -> AgentCommands:
        """On `layout`, its config file written with `config` (None: left as it is, e.g. to
        an agent loop already running on the layout)."""
        if config is not None:
            layout.config_file.parent.mkdir(parents=True, exist_ok=True)
            layout.config_file.write_text(config)
        root.mkdir(parents=True, exist_ok=True)
        return cls(layout, root, dclient, agent_env(layout))

    @property
    def sock(self) -> Path:
        return self.layout.tmux_sock

    def start_tmux(self) -> None:
        """What `hal-agent run` does for tmux: the `hal` session and the key bindings."""
        from parent_agent.adapters.tmux import TmuxUI
        from parent_agent.core.keys import bindings

        with environment(self.env):
            ui = TmuxUI(libtmux.Server(socket_path=str(self.sock)))
            ui.ensure_session()
            ui.apply_keys("C-b", bindings({}))

    def close(self) -> None:
        from hal_testing.engine import remove_workers_under

        remove_workers_under(self.dclient, self.root)
        self.tmux("kill-server")

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "parent_agent", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> str:
        res = self.run(*args)
        if res.returncode != 0:
            raise AssertionError(f"hal-agent {' '.join(args)}: {res.stdout}{res.stderr}")
        return res.stdout

    def project(self, name: str) -> Path:
        return chown_project(self.root / name)

    def tmux(self, *args: str) -> list[str]:
        out = subprocess.run(
            ["tmux", "-S", str(self.sock), *args], capture_output=True, text=True, check=False
        ).stdout
        return out.splitlines()

    def windows(self) -> set[str]:
        return {w for w in self.tmux("list-windows", "-t", "=hal", "-F", "#{@hal-session}") if w}

    def state(self, name: str) -> str:
        found = self.dclient.containers.list(all=True, filters=labels.managed_filter(session=name))
        return found[0].status if found else "absent"

    def agent_pid(self, name: str) -> str:
        """The agent's identity: its pid inside the worker plus the worker's start time
        (pids repeat in a restarted container's fresh pid namespace)."""
        from parent_agent.adapters import workers
        from parent_agent.adapters.engine import InnerEngine

        c = self.dclient.containers.get(container_name(name))
        pid = workers.agent_pid(InnerEngine(self.dclient), c.name or "")  # None unless running
        return f"{pid}@{c.attrs['State']['StartedAt']}" if pid is not None else ""


class EngineSeam:
    """Stands in for our own Dockerd supervisor (a seam of ours, not docker-py): the test
    engine plays the inner engine, so the loop runs without Docker-in-Docker."""

    def __init__(self, docker_host: str) -> None:
        self.host = docker_host
        self.stopped = threading.Event()

    def start(self) -> InnerEngine:
        from parent_agent.adapters.engine import InnerEngine

        return InnerEngine(docker.DockerClient(base_url=self.host))

    def wait(self) -> int:
        self.stopped.wait()
        return 0

    def stop(self) -> None:
        self.stopped.set()


# threads of the loop that outlive it by design: they end with the engine's stream
LOOP_DAEMONS = ("docker-events", "dockerd-watch", "bring-back")


class AgentLoop:
    """The parent's loop (`Agent.run`) in a thread, on `layout`, with the config file
    `layout.config_file`. The tmux server it starts inherits this process's environment:
    give it `agent_env(layout)` first, for `hal-agent` in its panes (the dashboard, the
    keys) to run on the layout too (the `agent_loop` fixture does)."""

    def __init__(self, layout: ParentLayout, docker_host: str) -> None:
        from parent_agent.adapters.tmux import TmuxUI
        from parent_agent.app.agent import Agent

        self.layout = layout
        self.ui = TmuxUI(libtmux.Server(socket_path=str(layout.tmux_sock)))
        seam = EngineSeam(docker_host)
        try:  # as `hal-agent run` starts: on the defaults when the file is bad
            cfg = load_config(layout.config_file)
        except ConfigError:
            cfg = Config()
        self.agent = Agent(cfg, layout, dockerd=seam, ui=self.ui)  # type: ignore[arg-type]
        # signals are the main thread's; the loop runs in another
        self.agent.install_signals = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.agent.run, name="agent-loop")
        self.threads_before = set(threading.enumerate())

    def published(self) -> Snapshot:
        """What the loop last published (the dashboard and `health` read the same file)."""
        from parent_agent.adapters import snapshot_file

        snap = snapshot_file.read(self.layout.status_file)
        if snap is None:
            raise AssertionError(f"the loop has published no snapshot at {self.layout.status_file}")
        return snap

    def start(self, timeout: float = 20) -> None:
        self.thread.start()
        if not retry_until(self.layout.ready_file.exists, timeout, raises=False):
            raise AssertionError(f"the loop did not get ready in {timeout}s")

    def stop(self) -> list[threading.Thread]:
        """Shut the loop down; the threads it left running (none, but the daemons)."""
        from parent_agent.app.events import Shutdown

        self.agent.inbox.put(Shutdown(15))
        self.thread.join(60)
        if self.thread.is_alive():
            raise AssertionError("the loop did not stop in 60s")
        leaked = [
            t
            for t in set(threading.enumerate()) - self.threads_before
            if t.name not in LOOP_DAEMONS and t.is_alive()
        ]
        self.ui.kill_server()
        return leaked
