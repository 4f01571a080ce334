"""What `claudy DIR` does before it hands the terminal over: the fast path, or the full one
(images, parent, worker image, credential and config)."""

from __future__ import annotations

import os

from hal_common.errors import HalError
from hal_common.naming import container_name, session_name
from hal_common.protocol import PARENT_RUNNING
from hal_common.services_build import host_line
from hal_common.shared_services import SERVICES_IMAGE
from hal_common.shared_services import images as service_images
from host_shim.adapters import background, images
from host_shim.adapters.engine import ContainerHandle, HostEngine
from host_shim.adapters.parent import ensure_parent, find_parent, runs_older_code
from host_shim.adapters.parent_client import ParentClient
from host_shim.commands.context import Ctx
from host_shim.core.fastpath import attachable

OLDER_PARENT = (
    "[yellow]the parent runs an older hal-9000; `claudy down && claudy` rebuilds and "
    "restarts it (workers stop, volumes and the Claude home stay)[/]"
)


def prepare(c: Ctx, engine: HostEngine) -> tuple[ParentClient, str]:
    """Images built, parent running and ready, worker image inside: (parent, worker image id)."""
    paths = background.Paths.of(c.host.layout, c.host.env)
    shared = frozenset(service_images(c.cfg.services) & {SERVICES_IMAGE})
    say_background(c, paths)
    later = images.ensure_images(engine, c.cfg, c.err, c.host.env, defer=shared)
    os.makedirs(c.config_dir, exist_ok=True)
    parent, changed = ensure_parent(engine, c.cfg, c.roots, c.config_dir, c.host.user)
    if changed:
        c.err.print(f"[green]parent {c.cfg.parent.name} is up[/]")
    say_if_older(c, engine, parent)
    agent = ParentClient(parent)
    image_id = images.ensure_inner_image(engine, agent, c.cfg.worker.image, c.err)
    # not needed to reach Claude Code: built and loaded in the background, started once the
    # worker image is in (so that it does not slow the parent's start and that load)
    if later:
        start_background(c, paths, "is building")  # the services start when it is loaded
    elif any(not images.inner_current(engine, agent, i) for i in sorted(shared)):
        start_background(c, paths, "is loading into the parent")
    return agent, image_id


def say_background(c: Ctx, paths: background.Paths) -> None:
    """What became of the last background build of the services image, if worth a word."""
    line = host_line(background.read_record(paths), background.running(paths))
    if line:
        c.err.print(f"[yellow]services:[/] {line}", soft_wrap=True)


def start_background(c: Ctx, paths: background.Paths, doing: str) -> None:
    """Build and load the services image in a detached process (unless one runs already)."""
    if background.running(paths):
        return
    background.start(paths, c.host.env)
    c.err.print(
        f"[dim]services image {SERVICES_IMAGE} {doing} in the background "
        f"(log: {paths.log}); the services start when it is ready[/]",
        soft_wrap=True,
    )


def say_if_older(c: Ctx, engine: HostEngine, parent: ContainerHandle) -> None:
    """Say so when the running parent is not what this checkout would build."""
    if runs_older_code(engine, parent, c.cfg, c.host.env):
        c.err.print(OLDER_PARENT)


def fast_session(c: Ctx, engine: HostEngine, project: str, detach: bool) -> str | None:
    """The reattach fast path (see core/fastpath.py): the session to show right away, or None
    when the full path must run."""
    parent = find_parent(engine, c.cfg.parent.name)
    if parent is None or parent.status != PARENT_RUNNING:
        return None
    try:
        host_image = engine.require_image(c.cfg.worker.image, "inspecting the worker image").id
    except HalError:
        return None
    session = session_name(project)
    found = ParentClient(parent).probe(c.cfg.worker.image, container_name(session))
    if not attachable(found, host_image, session, need_window=not detach):
        return None
    say_if_older(c, engine, parent)  # cheap (an image lookup, a source hash): say upgrades
    return session
