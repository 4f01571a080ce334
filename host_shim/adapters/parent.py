"""The parent container on the host engine: found, checked, created or started, and ready.

Its run spec is pure (`host_shim.core.parent_spec`); this module acts on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hal_common import labels
from hal_common.config import Config
from hal_common.errors import EngineUnavailable, HalError
from hal_common.protocol import PARENT_RESTARTING, PARENT_RUNNING, PARENT_STOPPED
from host_shim.adapters.engine import ContainerHandle, HostEngine
from host_shim.adapters.identity import wanted_ssh_agent
from host_shim.adapters.parent_client import ParentClient
from host_shim.core.build_context import PARENT, SOURCE_LABEL, Recipe, find_context, source_hash
from host_shim.core.parent_spec import (
    SSH_AGENT_KEY,
    HostUser,
    config_env,
    env_restart_needed,
    parent_kwargs,
    resolve_security,
    ssh_restart_needed,
)

log = logging.getLogger(__name__)


def find_parent(engine: HostEngine, name: str) -> ContainerHandle | None:
    return engine.container(name, "looking up the parent")


def running_parent(engine: HostEngine, name: str) -> ContainerHandle:
    """The parent, which must be running (for commands that run something in it)."""
    parent = find_parent(engine, name)
    if parent is None or parent.status != PARENT_RUNNING:
        raise EngineUnavailable(
            f"the parent {name} is not running",
            hint="`claudy DIR` starts it (claudy status shows it)",
        )
    return parent


def _outdated(engine: HostEngine, c: ContainerHandle, cfg: Config) -> bool:
    current = engine.image(cfg.parent.image, "starting the parent")
    return current is not None and current.id != c.image_id


def ensure_parent(
    engine: HostEngine,
    cfg: Config,
    roots: tuple[str, ...],
    config_dir: str,
    user: HostUser,
    ready_timeout: float = 90.0,
    env: Mapping[str, str] | None = None,
) -> tuple[ContainerHandle, bool]:
    """The running, ready parent; (container, created_or_started). A parent it creates gets
    the config overrides of `env` (the host's environment)."""
    what = "starting the parent"
    changed = False
    c = find_parent(engine, cfg.parent.name)
    if c is not None and c.labels.get(labels.ROLE) != labels.ROLE_PARENT:
        raise HalError(
            f"a container named {cfg.parent.name} exists but is not hal-9000's parent",
            hint="rename it, or set [parent].name in the config",
        )
    if (
        c is not None
        and c.status in PARENT_STOPPED
        and (_outdated(engine, c, cfg) or restart_needed_by_env(c, env or {}, cfg))
    ):
        # nothing runs in it: a stopped parent from an older image, or made with other
        # HAL9000_* overrides, is made anew (its volumes, so the Claude home, the inner
        # images, the data and the logs, stay)
        log.info("recreating the stopped parent from the current image and environment")
        c.remove(what=what)
        c = None
    if c is None:
        security = resolve_security(cfg.parent.security, engine.info(what).runtimes)
        log.info("creating parent", extra={"security": security})
        overrides = config_env(env or {})
        kwargs = parent_kwargs(
            cfg,
            roots,
            config_dir,
            user,
            security,
            overrides=overrides,
            ssh_agent=wanted_ssh_agent(cfg, env or {}),
        )
        c = engine.run_container(kwargs, what)
        changed = True
    elif c.status == PARENT_RESTARTING:
        tail = c.logs_tail(15, what)
        raise HalError(
            f"the parent {cfg.parent.name} keeps crashing; last lines of its log:\n{tail}",
            hint="claudy doctor; `claudy down && claudy` recreates it (volumes stay)",
        )
    elif c.status != PARENT_RUNNING:
        c.start(what)
        changed = True
    agent = ParentClient(c)
    ready = agent.ready_now() if not changed else False
    if not ready:
        answer = agent.ready(ready_timeout)
        if not answer.ready:
            tail = c.logs_tail(15, "reading the parent's log")
            raise HalError(
                f"the parent did not become ready: {answer.detail or 'it is not running'}\n"
                f"last lines of its log:\n{tail}",
                hint="claudy doctor checks privileges; `docker logs "
                f"{cfg.parent.name}` shows the agent's log",
            )
    return c, changed


def restart_needed_by_env(
    parent: ContainerHandle, env: Mapping[str, str], cfg: Config | None = None
) -> tuple[str, ...]:
    """The host's HAL9000_* config overrides that the parent was not created with (set,
    changed or unset since), and (given `cfg`) `SSH_AUTH_SOCK` when a project is opted in to
    the SSH agent and the parent binds another socket or none: they apply when it is made
    anew."""
    found = env_restart_needed(config_env(env), parent.env)
    if cfg is not None and ssh_restart_needed(wanted_ssh_agent(cfg, env), parent.labels):
        found = (*found, SSH_AGENT_KEY)
    return found


def runs_older_code(engine: HostEngine, parent: ContainerHandle, cfg: Config) -> bool:
    """The running parent is not what this install would build (say so, never fatal)."""
    what = "checking the parent's image"
    running = engine.image(parent.image_id, what) if parent.image_id else None
    current = engine.image(cfg.parent.image, what)
    built_from = running.labels.get(SOURCE_LABEL) if running is not None else None
    wanted: str | None
    try:
        wanted = source_hash(find_context(), Recipe(cfg.parent.image, PARENT, None))
    except HalError:  # no build context here: only the image id can tell
        wanted = built_from
    moved = running is not None and current is not None and running.id != current.id
    return moved or built_from != wanted
