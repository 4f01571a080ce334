"""What every claudy command starts from: the host (environment, layout, user), then its config.

The group callback builds one `Host` from the environment and keeps it in click's `ctx.obj`;
commands that need the config turn it into a `Ctx` with `load_ctx`. Nothing here reads the
environment on its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import click
from rich.console import Console
from rich.markup import escape

from hal_common import engines
from hal_common.config import Config, load_config
from hal_common.engines import EngineChoice
from hal_common.layout import HostLayout
from hal_common.projects import PathPolicy, check_roots, expand_roots
from hal_io import manners
from host_shim.adapters.engine import HostEngine
from host_shim.core.handover import DEFAULT_TERM
from host_shim.core.parent_spec import HostUser

ENGINE_HINT = (
    "install and start Docker (Debian/Ubuntu: sudo apt-get install docker.io), "
    "and make sure you may use it (sudo usermod -aG docker $USER, then log in again); "
    "claudy doctor says more"
)


def host_user(env: Mapping[str, str], home: str = "") -> HostUser:
    """The invoking user: under sudo, the user who ran sudo. `home` is the home the roots
    are expanded from (resolved: the parent compares resolved paths with it)."""
    uid, gid = os.getuid(), os.getgid()
    real_home = os.path.realpath(home) if home else ""
    if uid == 0 and env.get("SUDO_UID"):
        return HostUser(int(env["SUDO_UID"]), int(env.get("SUDO_GID", "0")), real_home)
    return HostUser(uid, gid, real_home)


@dataclass(frozen=True)
class Host:
    """The host claudy runs on: its environment, where things are, who runs it."""

    env: Mapping[str, str]
    layout: HostLayout
    user: HostUser
    err: Console = field(compare=False)  # messages and warnings go to stderr
    progress: Console = field(compare=False)  # progress and information: stderr, not with -q
    # claudy's --engine URL and --context NAME (None: not given); `load_ctx` pins the
    # engine it chose here, the config's included
    engine_flags: tuple[str | None, str | None] = (None, None)
    # the environment claudy was given (`env` names the chosen engine once pinned)
    given_env: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], engine: str | None = None, context: str | None = None
    ) -> Host:
        layout = HostLayout.from_env(env)
        user = host_user(env, str(layout.home))
        out = stderr_console(), stderr_console(progress=True)
        host = cls(env, layout, user, *out, engine_flags=(engine, context), given_env=env)
        host.choice()  # a bad --engine or --context is said before anything runs
        return host

    def choice(self, configured: str = "") -> EngineChoice:
        """The engine: the flags, else DOCKER_HOST/DOCKER_CONTEXT, else `configured` (the
        config's `[parent] engine`), else docker-py's default (the current context)."""
        return engines.choose(*self.engine_flags, self.env, configured)

    def with_engine(self, choice: EngineChoice) -> Host:
        """This host pinned to `choice`: its env names the engine (for the docker CLI and
        the background build), so that every later step uses that one."""
        flags = (choice.host or None, choice.context or None)
        return replace(self, env=choice.env(self.env), engine_flags=flags)

    @property
    def term(self) -> str:
        return self.env.get("TERM", DEFAULT_TERM)

    def engine(self) -> HostEngine:
        return HostEngine.connect(self.choice(), self.env, ENGINE_HINT)

    def cli_args(self) -> list[str]:
        """The docker CLI's options that pick this engine (`-H URL`, `--context NAME`)."""
        return self.choice().cli_args()


@dataclass(frozen=True)
class Ctx:
    """A host and its config: what the commands that touch the parent start from."""

    host: Host
    cfg: Config
    roots: tuple[str, ...]

    @property
    def config_dir(self) -> str:
        """hal-9000's config directory, resolved (the path policy compares resolved paths)."""
        return os.path.realpath(self.host.layout.config_dir)

    def policy(self) -> PathPolicy:
        """The path policy claudy pre-checks with; the parent, given the same inputs
        (HAL_ROOTS, HAL_HOST_HOME, HAL_HOST_CONFIG_DIR), decides."""
        return PathPolicy(self.roots, self.host.user.home, self.config_dir)

    @property
    def err(self) -> Console:
        return self.host.err

    @property
    def progress(self) -> Console:
        return self.host.progress

    def engine(self) -> HostEngine:
        return self.host.engine()


def stderr_console(progress: bool = False) -> Console:
    """stderr, without colour under NO_COLOR or --no-color; `progress`: silent with -q."""
    return manners.console(stderr=True, highlight=False, progress=progress)


def load_ctx(host: Host) -> Ctx:
    """The host's config, its warnings said, its roots checked."""
    cfg = load_config(host.layout.config_file, host.env)
    for w in cfg.warnings:
        host.err.print(f"[yellow]warning:[/] {escape(w)}")
    roots = expand_roots(cfg.parent.roots, str(host.layout.home))
    check_roots(roots)
    return Ctx(host.with_engine(host.choice(cfg.parent.engine)), cfg, roots)


def current_host() -> Host:
    """The `Host` the group callback built (for callbacks that get no `ctx` of their own)."""
    host = click.get_current_context().find_object(Host)
    if host is None:
        raise RuntimeError("claudy's group callback did not run")
    return host


pass_host = click.make_pass_decorator(Host)
