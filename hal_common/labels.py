"""The label keys: the registry of everything hal-9000 creates.

Listing, attaching, GC and reconciling go by these labels, never by parsing names.
"""

from __future__ import annotations

PREFIX = "dev.hal9000"
MANAGED = f"{PREFIX}.managed"
ROLE = f"{PREFIX}.role"
SESSION = f"{PREFIX}.session"
PROJECT = f"{PREFIX}.project"
IMAGE = f"{PREFIX}.image"
VERSION = f"{PREFIX}.version"
CLAUDE = f"{PREFIX}.claude-version"  # the Claude Code version the worker mounts
PORTS = f"{PREFIX}.ports"  # a worker's `[worker] ports` ("3000,8080"); a parent's host range
TEMPLATE = f"{PREFIX}.template"  # hash of image, command, network, restart, env at creation
# the project file's settings a worker was made with (JSON: its hash, trusted, limits, allow)
PROJECT_CONFIG = f"{PREFIX}.project-config"
GRANTS = f"{PREFIX}.grants"  # a worker's identity grants: "ssh-agent,github-token" (or "")
# on the parent: the host's SSH agent socket it binds ("" none); another one means a restart
SSH_AGENT = f"{PREFIX}.ssh-agent"
# a task's worker (hal_common/tasks.py): its name, its repository's root, the commit it began at
TASK = f"{PREFIX}.task"
REPO = f"{PREFIX}.repo"
BASE = f"{PREFIX}.base"

ROLE_PARENT = "parent"
ROLE_WORKER = "worker"


def managed_filter(
    role: str | None = None, session: str | None = None, project: str | None = None
) -> dict[str, str | list[str] | bool]:
    """A docker-py `filters` dict that matches our objects, optionally narrowed."""
    wanted: list[str] = [f"{MANAGED}=true"]
    for key, value in ((ROLE, role), (SESSION, session), (PROJECT, project)):
        if value is not None:
            wanted.append(f"{key}={value}")
    return {"label": wanted}


def parent_labels(version: str) -> dict[str, str]:
    return {MANAGED: "true", ROLE: ROLE_PARENT, VERSION: version}


def worker_labels(session: str, project: str, image: str, version: str) -> dict[str, str]:
    return {
        MANAGED: "true",
        ROLE: ROLE_WORKER,
        SESSION: session,
        PROJECT: project,
        IMAGE: image,
        VERSION: version,
    }


def task_labels(name: str, repo: str, base: str) -> dict[str, str]:
    """The labels of a task's worker (`base` may be "": not known)."""
    return {TASK: name, REPO: repo, **({BASE: base} if base else {})}
