"""Spawning and attaching: a worker container plus its tmux window, serialised per session."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal_common import identity, labels
from hal_common.config import Config
from hal_common.errors import HalError, ImageMissing, NoSuchSession, UsageError
from hal_common.layout import ParentLayout
from hal_common.naming import session_name
from hal_common.project_config import BUILTIN_IMAGES, PROJECT_IMAGE, Overlay
from hal_common.projects import PathPolicy, resolve_project
from hal_common.tasks import check_name, task_image, worktree
from parent_agent.adapters import claude_home as claude_home_mod
from parent_agent.adapters import claude_store, git, identity_store, project_file, services, workers
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app import tasks
from parent_agent.core import services as services_core
from parent_agent.core.model import Worker
from parent_agent.core.spec import (
    DEDICATED_UID,
    WorkerSpec,
    dedicated_can_write,
    owner_note,
    pick_owner,
    worker_spec,
)
from parent_agent.core.tmux import worker_window_command

if TYPE_CHECKING:
    from parent_agent.adapters.tmux import TmuxUI

log = logging.getLogger(__name__)


@contextmanager
def session_lock(session: str, lock_dir: Path) -> Iterator[None]:
    """One spawn per session at a time, across processes (two `claudy DIR` at once)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{session}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def project_path(directory: str, layout: ParentLayout) -> str:
    """The project's real path, if the path policy allows it (hal_common.projects): the one
    gate in the parent that every way of naming a project goes through (`spawn`, `attach`,
    the prefix-N prompt, the recent-projects menu, a path given as a NAME). The roots, the
    host user's home and config directory are the ones claudy started the parent with; the
    roots are mounted at the same path, so the path means the same here as on the host.
    Raises UsageError (exit 2) naming the rule broken; nothing is created before it."""
    return resolve_project(directory, PathPolicy.of_parent(layout))


def looks_like_path(name_or_dir: str) -> bool:
    """A project path rather than a session name (which never has '/' nor starts with '.',
    '~')."""
    return name_or_dir.startswith((".", "~")) or "/" in name_or_dir


def host_owner(project: str, layout: ParentLayout) -> tuple[int, int]:
    st = Path(project).stat()
    uid, gid = pick_owner(layout.host_uid, layout.host_gid, st.st_uid, st.st_gid)
    note = owner_note(uid, gid, project, st.st_uid, st.st_gid, st.st_mode)
    if note:
        log.warning("%s", note)
    return uid, gid


def write_warning(spec: WorkerSpec) -> str | None:
    """What the user must hear before working in `spec`'s project: the agent runs as the
    dedicated uid and cannot write it (None when it can, or when it runs as the user)."""
    try:
        st = Path(spec.project).stat()
    except OSError:
        return None
    if spec.uid != DEDICATED_UID or dedicated_can_write(spec.gid, st.st_gid, st.st_mode):
        return None
    return owner_note(spec.uid, spec.gid, spec.project, st.st_uid, st.st_gid, st.st_mode)


def prepare_claude_home(
    layout: ParentLayout,
    session: str,
    uid: int,
    gid: int,
    project: str,
    mcp: Mapping[str, Mapping[str, Any]] | None = None,
    token: str | None = None,
) -> None:
    """The worker's private Claude state, owned by the worker user, past the first-run wizard.

    Without `hasCompletedOnboarding` Claude Code starts its onboarding, which needs the
    network, and exits at once when offline. The project's folder trust is granted: the
    user asked for this directory by running claudy in it, and Claude's trust question
    defaults to "No, exit", which would stop the worker on the first Enter. The shared
    MCP servers (`mcp`) and ChromaDB's token go in too.
    """
    claude_home_mod.prepare_worker(layout, session, project, uid, gid, mcp, token)


def spawn(
    engine: InnerEngine,
    ui: TmuxUI | None,
    cfg: Config,
    directory: str,
    layout: ParentLayout,
    env: Mapping[str, str],
    image_id: str | None = None,
    name: str | None = None,
    image: str | None = None,
    progress: Callable[[str], None] | None = None,
    task: tasks.Task | None = None,
) -> WorkerSpec:
    """Ensure the worker for `directory` runs and (given a tmux UI) has a window. Idempotent.

    `env` is the environment `[worker].env` names are passed on from. The project's
    `.hal9000.toml` is merged over `cfg` first: a bad or untrusted one refuses the spawn
    before anything is made. `progress` hears a user Dockerfile's build, line by line.
    `task`: the task whose worktree `directory` is, as `tasks.ensure` just made it (a task's
    worktree is recognised without it too: a restart, a bring-back)."""
    project = project_path(directory, layout)
    cfg, overlay = project_file.load(cfg, project, layout)
    uid, gid = host_owner(project, layout)
    existing = workers.find_by_project(engine, project)
    mounts, task_labels = git_of(project, layout, existing, task)
    if name is not None:
        check_custom_name(name)
        other = workers.find_by_session(engine, name)
        if other is not None and other.project != project:
            raise UsageError(
                f"session name {name} is taken by {other.project}", hint="pick another --name"
            )
    elif existing is not None:
        name = existing.name  # the project's worker, whatever its name
    claude = claude_binary(
        layout, cfg, running=existing is not None and existing.state == "running"
    )
    if overlay.dockerfile and image is None:
        image = project_image(engine, overlay, progress or _log_line)
        image_id = None  # claudy loaded the config's image, this one's base
    if image is None and task_labels is not None:
        image = task_image(cfg.worker.image)  # git inside (claudy loaded it)
    grants = identity.grants(
        project, cfg.identity.ssh_agent, cfg.identity.github_token, layout.host_home
    )
    spec = worker_spec(
        project,
        cfg.worker,
        uid,
        gid,
        env,
        session=name,
        image=image,
        layout=layout,
        claude=claude,
        overlay=overlay,
        grants=grants,
        ssh_agent=ssh_agent_socket(layout, project) if grants.ssh_agent else "",
        git=(mounts.rw, mounts.ro),
        task=task_labels,
    )
    if grants.github_token and identity_store.load_token(layout) is None:
        log.warning(
            "%s is opted in to the GitHub token, but none is imported "
            "(claudy identity github-token)",
            project,
        )
    with session_lock(spec.session, layout.lock_dir), disk_errors(spec.session, layout):
        current = check_image(engine, spec.image, image_id, project)
        bearer = services.ensure_token(layout.mcp_token_file)
        plan = services_core.plan(cfg.services, layout.service_data, bearer)
        # its private state, with the MCP servers even if the loop lags; a file the worker
        # broke is logged and left alone (untrusted), never a reason to hang or fail
        token = services.shared_token(plan)
        prepare_claude_home(layout, spec.session, uid, gid, project, plan.mcp, token)
        if existing is None or existing.state != "running":
            # the first claudy starts the services a moment before the worker: let them
            # answer, so the agent connects to them at its start (never for a broken one)
            silent = services.wait_for_mcp(engine, plan.waits)
            if silent:
                log.warning("starting %s before MCP servers %s answer", spec.session, silent)
        workers.ensure_worker(engine, spec, layout, image_id=current)
        if ui is not None:
            command = worker_window_command(spec.container, layout.inner_docker_host)
            ui.ensure_window(spec.session, command)
    return spec


def _log_line(text: str) -> None:
    log.info("%s", text)


def check_image(engine: InnerEngine, image: str, image_id: str | None, project: str) -> str:
    """`workers.check_image`, saying how to get a built-in profile's image (claudy builds
    it on the host when a project asks for it)."""
    try:
        return workers.check_image(engine, image, image_id)
    except ImageMissing as e:
        if image in BUILTIN_IMAGES and not image_id:
            e.hint = f"`claudy {project}` on the host builds {image} and loads it into the parent"
        raise


def project_image(engine: InnerEngine, overlay: Overlay, progress: Callable[[str], None]) -> str:
    """The image of the project's own Dockerfile, built in the parent's engine when no image
    of its content is there yet (tag: the hash of the Dockerfile and its folder)."""
    context, digest = project_file.build_context(overlay.root, overlay.dockerfile)
    tag = f"{PROJECT_IMAGE}:{digest[:16]}"
    if engine.has_image(tag):
        return tag
    where = f"{overlay.root}/{overlay.dockerfile}"
    progress(f"building {tag} from {where} (once for this content)")
    for line in engine.build(
        context,
        tag,
        {"dev.hal9000.project": overlay.root, "dev.hal9000.source": digest},
        what=f"building {where}",
    ):
        progress(line)
    progress(f"built {tag}")
    return tag


def ssh_agent_socket(layout: ParentLayout, project: str) -> str:
    """The host's SSH agent socket claudy bound into the parent, for an opted-in project:
    its path, or "" (and a warning) when there is none."""
    sock = layout.ssh_agent_sock
    try:
        if stat.S_ISSOCK(os.stat(sock).st_mode):
            return str(sock)
    except OSError:
        pass
    log.warning(
        "%s is opted in to the SSH agent, but the parent has none from the host: start "
        "claudy where SSH_AUTH_SOCK is set, then `claudy down && claudy`",
        project,
    )
    return ""


def git_of(
    project: str, layout: ParentLayout, existing: Worker | None, task: tasks.Task | None
) -> tuple[tasks.GitMounts, dict[str, str] | None]:
    """The repository's git the worker of `project` mounts, and its task labels when it is
    a task's worktree (whose repository's root the path policy must allow: its `.git` is
    mounted). The base: the one just made, else the worker's label, else where the task's
    branch meets the main checkout's HEAD."""
    found = git.task_repo(project)
    if found is None:
        return tasks.git_mounts(project), None
    named, repo = found
    project_path(repo.root, layout)
    base = (task.base if task else "") or (existing.base if existing else "")
    base = base or tasks.guess_base(repo)
    return tasks.git_mounts(project), labels.task_labels(named.name, repo.root, base)


def spawn_task(
    engine: InnerEngine,
    ui: TmuxUI | None,
    cfg: Config,
    directory: str,
    name: str,
    from_ref: str | None,
    layout: ParentLayout,
    env: Mapping[str, str],
    image_id: str | None = None,
    image: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> WorkerSpec:
    """Task `name` of DIRECTORY's repository: its worktree (made, or found as it was) and
    its own worker there. Serialised per task, across processes."""
    project = project_path(directory, layout)
    policy = PathPolicy.of_parent(layout)
    where = tasks.repo_of(project, policy)
    path = worktree(where.root, check_name(name))
    with session_lock(f"task-{session_name(path)}", layout.lock_dir):
        task = tasks.ensure(project, name, from_ref, policy, cfg.worker.copy)
        return spawn(
            engine,
            ui,
            cfg,
            task.path,
            layout,
            env,
            image_id=image_id,
            image=image,
            task=task,
            progress=progress,
        )


def claude_binary(layout: ParentLayout, cfg: Config, running: bool) -> tuple[str, str] | None:
    """The Claude Code a new or restarted worker mounts: (version, binary) from the store. A
    running worker keeps its own, so a missing one is no error then (nothing is created)."""
    try:
        found = claude_store.resolve(layout.claude_store, cfg.claude.version)
    except HalError:
        if running:
            return None
        raise
    return found.version, str(found.path)


@contextmanager
def disk_errors(session: str, layout: ParentLayout) -> Iterator[None]:
    """An OSError writing the worker's files (a full disk, a read-only volume) as a clear
    HalError: the spawn fails, nothing else does."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        hint = ""
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = (
                f"the parent's data volume ({layout.data_dir}) is full: free space there "
                "(`hal-agent gc` removes old stopped workers) and try again"
            )
        raise HalError(
            f"cannot prepare worker {session}: {e.strerror or e}{where}", hint=hint
        ) from None


_CUSTOM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def check_custom_name(name: str) -> None:
    if not _CUSTOM_NAME.match(name):
        raise UsageError(
            f"bad session name {name!r}",
            hint="lowercase letters, digits, '-' and '_', at most 48, starting with a letter "
            "or digit",
        )


def resolve_name(engine: InnerEngine, name_or_dir: str, layout: ParentLayout) -> str:
    """The session of an exact session name, or of the worker of a project path (which the
    path policy must allow)."""
    found = workers.find_by_session(engine, name_or_dir)
    if found is not None:
        return name_or_dir
    if looks_like_path(name_or_dir):
        real = project_path(name_or_dir, layout)
        by_project = workers.find_by_project(engine, real)
        if by_project is not None:
            return by_project.name
        raise NoSuchSession(f"no worker for {real}", hint=f"hal-agent spawn {real}")
    by_task = workers.find_by_task(engine, name_or_dir)
    if len(by_task) == 1:
        return by_task[0].name
    if by_task:
        raise UsageError(
            f"{len(by_task)} repositories have a task {name_or_dir}: "
            + ", ".join(f"{w.name} ({w.repo})" for w in by_task),
            hint="name its worker (the session) instead",
        )
    raise NoSuchSession(f"no worker named {name_or_dir}", hint="hal-agent ls --all lists them")
