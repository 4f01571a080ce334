"""The parent container on the host engine: found, checked, created or started, and ready.

Its run spec is pure (`host_shim.core.parent_spec`); this module acts on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from hal_common import labels
from hal_common.config import Config
from hal_common.errors import EngineUnavailable, HalError
from hal_common.ports import PortRange, next_free, parse_range
from hal_common.protocol import PARENT_RESTARTING, PARENT_RUNNING, PARENT_STOPPED
from host_shim.adapters.engine import ContainerHandle, HostEngine
from host_shim.adapters.host_ports import Probe, clash
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
    taken: Probe | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[ContainerHandle, bool]:
    """The running, ready parent; (container, created_or_started). A parent it creates gets
    the config overrides of `env` (the host's environment), and publishes `[parent] ports`,
    or the next free range when a port of it is `taken` on the host (`say` tells why)."""
    say = say or (lambda text: log.warning("%s", text))
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
    if c is not None and c.status in PARENT_STOPPED:
        try:
            c.start(what)
        except HalError as e:
            if clash(e.message) is None:
                raise
            # its host ports went to another program meanwhile: made anew on free ones
            say(f"the stopped parent's host ports are taken now ({e.message}); making it anew")
            c.remove(what=what)
            c = None
        else:
            changed = True
    if c is None:
        security = resolve_security(cfg.parent.security, engine.info(what).runtimes)
        log.info("creating parent", extra={"security": security})
        overrides = config_env(env or {})

        def create(published: PortRange | None) -> ContainerHandle:
            kwargs = parent_kwargs(
                cfg,
                roots,
                config_dir,
                user,
                security,
                overrides=overrides,
                published=published,
                ssh_agent=wanted_ssh_agent(cfg, env or {}),
            )
            return engine.run_container(kwargs, what)

        c = create_publishing(engine, cfg, create, taken or (lambda _p: False), say)
        changed = True
    elif c.status == PARENT_RESTARTING:
        tail = c.logs_tail(15, what)
        raise HalError(
            f"the parent {cfg.parent.name} keeps crashing; last lines of its log:\n{tail}",
            hint="claudy doctor; `claudy down && claudy` recreates it (volumes stay)",
        )
    elif not changed and c.status != PARENT_RUNNING:
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


PORT_TRIES = 5  # ranges tried when the engine refuses one another program took meanwhile


def create_publishing(
    engine: HostEngine,
    cfg: Config,
    create: Callable[[PortRange | None], ContainerHandle],
    taken: Probe,
    say: Callable[[str], None],
) -> ContainerHandle:
    """The parent made by `create` with `[parent] ports`, or, when a port of it is taken on
    the host (seen by `taken` before, or refused by the engine at start), the next range of
    the same size whose every port is free. HalError when none is left below 65536."""
    wanted = parse_range(cfg.parent.ports)
    if wanted is None:
        return create(None)
    address = cfg.parent.ports_address
    held, published = next_free(wanted, taken)
    for _ in range(PORT_TRIES):
        if published is None:
            raise HalError(
                f"no free range of {wanted.size} host ports on {address} from {wanted.first} "
                f"([parent] ports = {str(wanted)!r}): {address}:{held} is taken by another "
                "program, and so is a port of every range above it",
                hint=f"set a free range: `claudy config set parent.ports {wanted.first + 1000}-"
                f'{wanted.last + 1000}`, or "" to publish none',
            )
        if held is not None:
            say(
                f"host port {address}:{held} is taken by another program: the parent publishes "
                f"{published} instead of [parent] ports = {str(wanted)!r} (to choose, "
                f"`claudy config set parent.ports FIRST-LAST`)"
            )
        try:
            return create(published)
        except HalError as e:
            port = clash(e.message)
            if port is None:
                raise
            leftover = find_parent(engine, cfg.parent.name)
            if leftover is not None:  # made, not started: its ports could not be bound
                leftover.remove(force=True, what="removing the parent that could not start")
            held = port if port in published else published.first
            start = max(held, published.first) + 1
            _, published = next_free(published.shifted(start), taken)
    raise HalError(
        f"the engine refused {PORT_TRIES} host port ranges for the parent: another program "
        "keeps taking them",
        hint="set a free range with `claudy config set parent.ports FIRST-LAST`",
    )


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
