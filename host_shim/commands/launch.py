"""What `claudy DIR` does before it hands the terminal over: the fast path, or the full one
(images, parent, worker image, credential and config)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from rich.markup import escape

import hal_common
import host_shim
from hal_common.errors import HalError
from hal_common.naming import container_name, session_name
from hal_common.project_config import BUILTIN_IMAGES, WORKER_IMAGE
from hal_common.projects import expand_user
from hal_common.protocol import PARENT_RUNNING
from hal_common.services_build import host_line
from hal_common.shared_services import SERVICES_IMAGE
from hal_common.shared_services import images as service_images
from hal_io import project_files
from host_shim.adapters import background, host_ports, images
from host_shim.adapters.engine import ContainerHandle, HostEngine
from host_shim.adapters.fast_hint import Stamps, forget_hint, save_hint, stamps, tree
from host_shim.adapters.parent import (
    ensure_parent,
    find_parent,
    restart_needed_by_env,
    runs_older_code,
)
from host_shim.adapters.parent_client import ParentClient
from host_shim.commands import claude
from host_shim.commands.context import Ctx
from host_shim.core.build_context import PARENT, find_context
from host_shim.core.fastpath import attachable, quick_attach_head
from host_shim.core.hint import Hint, env_subset
from host_shim.core.parent_spec import PARENT_LAYOUT, RESTART_NEEDED

OLDER_PARENT = (
    "[yellow]the parent runs an older hal-9000; `claudy down && claudy` rebuilds and "
    "restarts it (workers stop, volumes and the Claude home stay)[/]"
)


def project_image(c: Ctx, project: str) -> str | None:
    """The built-in image `project`'s `.hal9000.toml` asks for (`profile`, or `image` naming
    one), which claudy builds on the host and loads like the others; None when it names
    none. A bad file is refused here with its line (the parent would refuse it the same);
    what needs trust is the parent's to decide."""
    _, pf = project_files.load(project, c.roots)
    if pf is None:
        return None
    image = f"{WORKER_IMAGE}:{pf.profile}" if pf.profile else pf.worker.get("image")
    return image if image in BUILTIN_IMAGES and image != c.cfg.worker.image else None


CONFIG_MAX = 1 << 20  # a config file past this is not one to send


def send_config(c: Ctx, engine: HostEngine, agent: ParentClient) -> None:
    """On an engine of another machine, the parent's config directory is that machine's
    folder at the same path, not this one's: the host's config file is sent to it (over an
    exec's stdin) when what the parent reads differs, and its watcher applies it live."""
    if host_ports.local_engine(engine.url or None):
        return
    path = c.host.layout.config_file
    try:
        with path.open("rb") as f:
            text = f.read(CONFIG_MAX + 1)
    except FileNotFoundError:
        return  # the defaults, here and there
    if len(text) > CONFIG_MAX or agent.config_text() == text.decode(errors="replace"):
        return
    agent.put_config(text)
    c.progress.print(f"[dim]sent {escape(str(path))} to the parent on {escape(engine.url)}[/]")


def prepare(c: Ctx, engine: HostEngine, image: str | None = None) -> tuple[ParentClient, str]:
    """Images built, parent running and ready, worker image inside: (parent, worker image id).
    `image`: the worker image to build and load instead of the config's (a project's
    profile)."""
    paths = background.Paths.of(c.host.layout, c.host.env)
    shared = frozenset(service_images(c.cfg.services) & {SERVICES_IMAGE})
    say_background(c, paths)
    cfg = c.cfg
    if image is not None:
        cfg = replace(cfg, worker=replace(cfg.worker, image=image))
    later = images.ensure_images(engine, cfg, c.progress, c.host.env, defer=shared)
    os.makedirs(c.config_dir, exist_ok=True)
    parent, changed = ensure_parent(
        engine,
        c.cfg,
        c.roots,
        c.config_dir,
        c.host.user,
        env=c.host.env,
        taken=host_ports.prober(c.cfg.parent.ports_address, engine.url or None),
        say=lambda text: c.err.print(f"[yellow]{escape(text)}[/]", soft_wrap=True),
    )
    if changed:
        c.progress.print(f"[green]parent {c.cfg.parent.name} is up[/]")
    say_if_older(c, engine, parent)
    say_restart_needed(c, parent)
    agent = ParentClient(parent)
    send_config(c, engine, agent)
    image_id = images.ensure_inner_image(engine, agent, cfg.worker.image, c.progress)
    claude.ensure(c, engine, agent)  # the Claude Code workers mount (installed once)
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
    c.progress.print(
        f"[dim]services image {SERVICES_IMAGE} {doing} in the background "
        f"(log: {paths.log}); the services start when it is ready[/]",
        soft_wrap=True,
    )


def say_if_older(c: Ctx, engine: HostEngine, parent: ContainerHandle) -> None:
    """Say so when the running parent is not what this install would build."""
    if runs_older_code(engine, parent, c.cfg):
        c.err.print(OLDER_PARENT)


def say_restart_needed(c: Ctx, parent: ContainerHandle) -> tuple[str, ...]:
    """Say each HAL9000_* override the parent was not created with (set, changed or unset on
    the host since); those names."""
    pending = restart_needed_by_env(parent, c.host.env, c.cfg)
    for name in pending:
        c.err.print(f"[yellow]{RESTART_NEEDED.format(key=name)}[/]", soft_wrap=True)
    return pending


def fast_session(
    c: Ctx, engine: HostEngine, project: str, detach: bool, before: Stamps = ()
) -> str | None:
    """The reattach fast path (see core/fastpath.py): the session to show right away, or None
    when the full path must run. `before`: the quick entry's stamps (`hint_stamps`)."""
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
    # cheap (an image lookup, a source hash): says upgrades, else leaves the quick entry a hint
    remember(c, engine, parent, host_image, before, project)
    return session


# --- the quick entry's hint (core/hint.py, commands/quick.py) -------------------------------


def hint_stamps(config_file: Path, env: Mapping[str, str]) -> Stamps:
    """The stamps of the files a hint is derived from: the config file, the sources the parent
    image is built from (changed: "the parent runs older code"), and claudy's own packages
    (the hint holds the attach script). Taken before the config is read, so that a change
    while claudy runs voids the hint."""
    paths = [str(config_file)]
    with contextlib.suppress(HalError):  # no build context: the parent's image id tells
        for top in find_context().inputs(PARENT):
            paths.extend(tree(str(top)))
    for package in (host_shim, hal_common):
        paths.extend(tree(os.path.dirname(package.__file__ or "")))
    # the Docker CLI's current context (`docker context use`): another engine, another hint
    docker_config = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or "~", ".docker")
    paths.append(os.path.join(os.path.expanduser(docker_config), "config.json"))
    return stamps(dict.fromkeys(paths))


def remember(
    c: Ctx,
    engine: HostEngine,
    parent: ContainerHandle,
    worker_image_id: str,
    before: Stamps,
    project: str,
    say: bool = True,
) -> None:
    """Say so (`say`) when the parent runs older code (no hint then), or was made with other
    HAL9000_* overrides; then, once `parent` is ready and holds
    the host's worker image (`worker_image_id`), leave the quick entry a hint that holds while
    `before` does, with the policy's decision for `project` (accepted: it got here). None when
    the config had warnings (the quick entry would not say them)."""
    if runs_older_code(engine, parent, c.cfg):
        if say:
            c.err.print(OLDER_PARENT)
        forget_hint(c.host.env)
        return
    if say:  # overrides the parent was not made with (the full path said them already); a
        # hint is per environment, so a changed one brings a full run, which says it
        say_restart_needed(c, parent)
    if not before or c.cfg.warnings or not parent.image_id:
        forget_hint(c.host.env)
        return
    home = str(c.host.layout.home)
    # every path the policy resolved (Ctx.policy, expand_roots): the same decision while
    # each still resolves to the same place
    inputs = [expand_user(r, home) for r in c.cfg.parent.roots]
    inputs += [home, str(c.host.layout.config_dir)]
    save_hint(
        c.host.env,
        Hint(
            env=env_subset(c.host.env),
            stamps=before,
            resolved=tuple((p, os.path.realpath(p)) for p in dict.fromkeys(inputs)),
            projects={project: session_name(project)},
            parent=c.cfg.parent.name,
            parent_id=parent.id,
            parent_image=c.cfg.parent.image,
            parent_image_id=parent.image_id,
            worker_image=c.cfg.worker.image,
            worker_image_id=worker_image_id,
            argv=tuple(quick_attach_head(c.cfg.parent.name, PARENT_LAYOUT)),
            engine=engine.url,
        ),
    )
