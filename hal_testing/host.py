"""A parent container driven as a user drives it: `claudy` in a subprocess, with a config
directory, a projects root and a home of its own under one base directory; the parent, its
inner engine and its tmux read through docker-py's exec."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from hal_common import labels
from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_common.naming import container_name, session_name
from hal_io.engine import run_in
from hal_testing import claude
from hal_testing.engine import GID, UID, chown_project
from hal_testing.schemas import validate

IMAGE = ParentLayout()  # the paths inside the parent image
INNER = ["docker", "-H", IMAGE.inner_docker_host]
TERMINAL_ENV = ("HAL", "XDG", "DOCKER", "HOME", "PATH")  # what a terminal's claudy is given


def parent_config(name: str, root: Path, worker: str, extra: str = "") -> str:
    return f'[parent]\nname = "{name}"\nroots = ["{root}"]\n\n[worker]\n{worker}{extra}'


@dataclass
class HostParent:
    """One parent, named `name`, whose projects are under `base/projects`."""

    dclient: docker.DockerClient
    env: dict[str, str]
    base: Path
    name: str
    uid: int = UID
    gid: int = GID
    project_files: tuple[Path, ...] = ()  # copied into each project made

    @classmethod
    def create(
        cls,
        dclient: docker.DockerClient,
        docker_host: str,
        base: Path,
        name: str,
        worker: str = 'memory = "1g"\n',
        extra: str = "",
        home: str | None = None,
        env: dict[str, str] | None = None,
        **kw: Any,
    ) -> HostParent:
        """Lay out `base`: projects, config, and the home, `base/HOME` (else `base` itself);
        write the config: this parent's name and root, `[worker]` with `worker`, then `extra`.
        `env` is added to the environment claudy runs in."""
        root, cfg = base / "projects", base / "config" / "hal9000"
        cfg.mkdir(parents=True)
        root.mkdir()
        if home is not None:
            (base / home).mkdir()
        (cfg / "config.toml").write_text(parent_config(name, root, worker, extra))
        e = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
        e.update(
            DOCKER_HOST=docker_host,
            XDG_CONFIG_HOME=str(cfg.parent),
            HAL9000_OFFLINE="1",
            HOME=str(base / (home or "")),
            # Claude Code from the runner's cache (filled by the set-up), never from npm
            XDG_CACHE_HOME=str(claude.cache_home()),
            HAL9000_NPM_REGISTRY=claude.NO_REGISTRY,
            TERM="xterm-256color",
            **(env or {}),
        )
        return cls(dclient, e, base, name, **kw)

    @property
    def root(self) -> Path:
        return self.base / "projects"

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    @property
    def config_file(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "hal9000" / "config.toml"

    def set_projects(self, mode: str) -> None:
        """`[parent] projects = MODE` in the user's config (claudy's own key: its next run)."""
        lines = [
            ln
            for ln in self.config_file.read_text().splitlines()
            if not ln.startswith("projects =")
        ]
        lines.insert(lines.index("[parent]") + 1, f'projects = "{mode}"')
        self.config_file.write_text("\n".join(lines) + "\n")

    # -- claudy, as a user runs it ------------------------------------------------------------
    def claudy(
        self, *args: str, timeout: float = 900, input: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "host_shim", *args],
            env={**self.env, **env},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def claudy_argv(self, *args: str) -> str:
        """The command line of `claudy ARGS` for a terminal (a tmux window) to run."""
        return " ".join(self.claudy_words(*args))

    def claudy_words(self, *args: str) -> list[str]:
        """`claudy ARGS` as words, `env NAME=VALUE… claudy ARGS`: what a shell that already
        runs execs (tmux runs a window's words without a shell of its own)."""
        exports = [f"{k}={v}" for k, v in self.env.items() if k.startswith(TERMINAL_ENV)]
        # the installed launcher, as a user's shell finds it (bin/claudy), where there is one
        launcher = Path(sys.executable).with_name("claudy")
        claudy = [str(launcher)] if launcher.is_file() else [sys.executable, "-m", "host_shim"]
        return ["env", *exports, *claudy, *args]

    def project(self, name: str) -> Path:
        """A project directory under the root, owned by the test user."""
        p = chown_project(self.root / name, self.uid, self.gid)
        for f in self.project_files:
            shutil.copy(f, p / f.name)
        return p

    def down(self) -> None:
        """`claudy down --volumes`: the parent and its volumes go; then the base directory."""
        self.claudy("down", "--volumes", "--yes", timeout=300)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- inside the parent --------------------------------------------------------------------
    @property
    def parent(self) -> Container:
        return self.dclient.containers.get(self.name)

    def run(self, argv: list[str]) -> tuple[int, str]:
        """`argv` in the parent: exit code and output (HalError when it is not running)."""
        return run_in(self.parent, argv)

    def sh(self, script: str) -> str:
        code, out = self.run(["sh", "-c", script])
        if code != 0:
            raise AssertionError(f"sh -c exited {code} in the parent:\n{out}")
        return out.strip()

    def inner(self, *argv: str, check: bool = True) -> str:
        """`docker ARGV` against the parent's own engine."""
        code, out = self.run([*INNER, *argv])
        if check and code != 0:
            raise AssertionError(f"docker {' '.join(argv)} exited {code}:\n{out}")
        return out.strip()

    def inner_workers(self) -> list[dict[str, Any]]:
        """`docker inspect` of every worker in the parent."""
        ids = self.inner("ps", "-a", "-q", "--filter", f"label={labels.ROLE}=worker").split()
        found: list[dict[str, Any]] = json.loads(self.inner("inspect", *ids)) if ids else []
        return found

    def in_worker(self, proj: Path, *argv: str, check: bool = True) -> str:
        return self.inner("exec", container_name(session_name(str(proj))), *argv, check=check)

    def tmux(self, *args: str) -> tuple[int, str]:
        """`tmux ARGS` on the parent's tmux server."""
        return self.run(["tmux", "-S", str(IMAGE.tmux_sock), *args])

    def windows(self) -> set[str]:
        """The windows of the parent's `hal` session; none when the parent is not running."""
        try:
            code, out = self.tmux("list-windows", "-t", "=hal", "-F", "#W")
        except HalError:
            return set()
        return set(out.split()) if code == 0 else set()

    def services(self) -> list[dict[str, Any]] | None:
        """`hal-agent services --json`; None while it cannot answer."""
        code, out = self.run(["hal-agent", "services", "--json"])
        if code != 0:
            return None
        found: list[dict[str, Any]] = json.loads(out)
        validate("services", found)
        return found

    def logs(self, tail: int = 60) -> str:
        return str(self.parent.logs(tail=tail).decode(errors="replace"))
