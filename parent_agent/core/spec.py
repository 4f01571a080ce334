"""Worker container specs: a pure function from config and project to create() arguments."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hal_common import __version__, labels
from hal_common.claude_code import WORKER_BINARY as WORKER_CLAUDE_BINARY
from hal_common.config import WorkerConfig, parse_memory, worker_env
from hal_common.config_schema import WORKER_MIN_CPUS, WORKER_MIN_MEMORY, WORKER_MIN_PIDS
from hal_common.egress import GATEWAY, WORKER_NETWORK, proxy_env
from hal_common.identity import GITCONFIG, NO_GRANTS, WORKER_SSH_SOCK, Grants
from hal_common.layout import (
    WORKER_CLAUDE_HOME,
    WORKER_HOME,
    WORKER_MANAGED_DIR,
    WORKER_REPORT_DIR,
    WORKER_RUN_DIR,
    ParentLayout,
)
from hal_common.naming import container_name, session_name
from hal_common.ports import format_ports
from hal_common.project_config import Overlay
from parent_agent.core.claude_state import CREDENTIALS, SHARED_DIRS, SHARED_FILES


@dataclass(frozen=True)
class WorkerSpec:
    session: str
    container: str
    project: str
    image: str
    command: tuple[str, ...]
    uid: int
    gid: int
    memory: int
    nano_cpus: int
    pids: int
    restart: str
    env: dict[str, str]
    labels: dict[str, str]
    run_dir: str = ""  # the parent's files of this worker (its passwd, group); "" for none
    # the Claude Code it runs: a version and its binary in the parent's store ("": none
    # mounted, the image's own `claude` if it has one)
    claude: str = ""
    claude_path: str = ""
    setup: str = ""  # the project's one-time command (`.hal9000.toml`), run by hal-worker
    # what it is given beyond the git identity ([identity] in the user's config), and the
    # parent's SSH agent socket it binds ("": none)
    grants: Grants = NO_GRANTS
    ssh_agent: str = ""
    # the repository's git beyond the project (app/tasks.git_mounts): read-write (a task's
    # common .git, a main checkout's own .git) and read-only (config, hooks, pointers)
    git_rw: tuple[str, ...] = ()
    git_ro: tuple[str, ...] = ()


# The uid a worker runs as when both the host user and the project's owner are root: outside
# the range useradd hands out (UID_MAX 60000) and Debian's allocations (60000-64999), below
# nobody (65534); 65532 is also the usual "nonroot" uid of distroless images, so files it
# writes on the host show up as a known non-user. Also the group when the project's is root's.
DEDICATED_UID = 65532
DEDICATED_GID = 65532


def pick_owner(host_uid: int, host_gid: int, dir_uid: int, dir_gid: int) -> tuple[int, int]:
    """The uid/gid a worker runs as, never 0: the host user (the one behind sudo), so that
    what the agent writes is theirs. When that is root, the project's owner (a project of
    another user is theirs). When that is root too, `DEDICATED_UID` with the project's group:
    the agent writes the project where its group may (see `owner_note`). Group 0 is never
    handed out either: `DEDICATED_GID` stands in for it."""
    if host_uid != 0:
        uid, gid = host_uid, host_gid
    elif dir_uid != 0:
        uid, gid = dir_uid, dir_gid
    else:
        uid, gid = DEDICATED_UID, dir_gid
    return uid, gid or DEDICATED_GID


def dedicated_can_write(gid: int, dir_gid: int, dir_mode: int) -> bool:
    """The dedicated uid (never the directory's owner) may write a directory of `dir_gid`
    and `dir_mode` when it runs with group `gid`."""
    return bool(dir_mode & (0o020 if gid == dir_gid else 0o002))


def owner_note(
    uid: int, gid: int, project: str, dir_uid: int, dir_gid: int, dir_mode: int
) -> str | None:
    """What to tell the user when the worker runs as the dedicated uid (the project is root's
    and so is claudy): whether the agent can write the project, and how to let it. None
    otherwise. Nothing is changed on the user's behalf."""
    if uid != DEDICATED_UID:
        return None
    note = (
        f"{project} belongs to root ({dir_uid}:{dir_gid}) and claudy runs as root: the agent "
        f"runs as uid {uid}, group {gid}, never as root"
    )
    if dedicated_can_write(gid, dir_gid, dir_mode):
        return f"{note}, and can write it"
    return (
        f"{note}, and cannot write it. To let it: `chgrp -R {gid} {project} && chmod -R g+rwX "
        f"{project}`, or own the project as your user and run claudy as that user (or by sudo)"
    )


def passwd_text(uid: int, gid: int) -> str:
    """The worker's /etc/passwd: root, nobody, and `hal` for the uid it runs as (ssh and git
    refuse a user the passwd file does not know). Mounted read-only."""
    rows = [
        (0, "root:x:0:0:root:/root:/usr/sbin/nologin"),
        (65534, "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"),
    ]
    mine = f"hal:x:{uid}:{gid}:hal-9000 agent:{WORKER_HOME}:/bin/sh"
    return "".join(f"{row}\n" for n, row in rows if n != uid) + mine + "\n"


def group_text(gid: int) -> str:
    """The worker's /etc/group: root, tty (the group of /dev/pts), nogroup, and `hal`."""
    rows = [(0, "root:x:0:"), (5, "tty:x:5:"), (65534, "nogroup:x:65534:")]
    return "".join(f"{row}\n" for n, row in rows if n != gid) + f"hal:x:{gid}:\n"


# what create_kwargs makes; 2: read-only plugins; 3: hardened (confinement), private Claude
# state, the internal network; 4: the report directory (hooks) and the run directory
# (resume) mounted (workers made before show as outdated); 5: the repository's .git with
# its config and hooks read-only (tasks)
LAYOUT = 5


def template_hash(cfg: WorkerConfig, image: str | None = None) -> str:
    """What a worker was created from, beyond its limits: a changed one marks it outdated.
    (A project file's settings are the `PROJECT_CONFIG` label's, compared by `same_spec`.)"""
    # a table of literal values counts its values; an array of names stays as it always was
    env = sorted(cfg.env.items()) if isinstance(cfg.env, dict) else sorted(cfg.env)
    made: list[object] = [image or cfg.image, list(cfg.command), cfg.restart, env, LAYOUT]
    if cfg.ports:  # only when set: workers made before ports existed are not outdated
        made.append(sorted(cfg.ports))
    text = json.dumps(made)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def worker_spec(
    project: str,
    cfg: WorkerConfig,
    uid: int,
    gid: int,
    environ: Mapping[str, str],
    session: str | None = None,
    image: str | None = None,
    layout: ParentLayout | None = None,
    claude: tuple[str, str] | None = None,
    overlay: Overlay | None = None,
    grants: Grants = NO_GRANTS,
    ssh_agent: str = "",
    git: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
    task: Mapping[str, str] | None = None,
) -> WorkerSpec:
    """The worker for `project`; `[worker].env` names take their values from `environ`.
    `layout` (default: the parent image's) says where the worker's parent-side files go.
    `claude`: (version, binary path) from the parent's store, mounted read-only.
    `overlay`: what the project's file adds (`cfg` is already merged with it): its env
    literals over the user's, its record as a label, its setup command. The template label
    stays the user's config's (`overlay.base`), so the dashboard's "outdated" keeps meaning
    "made from another config"; the project's part is its own label.
    `grants`: its opt-ins; `ssh_agent`: the parent's agent socket, bound when granted.
    `git`: the repository's paths it mounts (read-write, read-only); `task`: a task's labels."""
    version, binary = claude or ("", "")
    # the SSH grant counts only with a socket to bind: the label says what the worker got
    grants = Grants(grants.ssh_agent and bool(ssh_agent), grants.github_token)
    session = session or session_name(project)
    overlay = overlay or Overlay()
    base = overlay.base or cfg
    template = template_hash(base, image)
    image = image or cfg.image
    env = {**worker_env(cfg, environ), **overlay.env}
    record = overlay.label()
    return WorkerSpec(
        session=session,
        container=container_name(session),
        project=project,
        image=image,
        command=cfg.command,
        uid=uid,
        gid=gid,
        memory=_memory(cfg),
        nano_cpus=_nano_cpus(cfg),
        pids=_pids(cfg),
        restart=cfg.restart,
        env=env,
        labels={
            **labels.worker_labels(session, project, image, __version__),
            labels.TEMPLATE: template,
            **({labels.CLAUDE: version} if version else {}),
            # the ports the parent's relays forward to (read back by `model.to_worker`)
            **({labels.PORTS: format_ports(cfg.ports)} if cfg.ports else {}),
            **({labels.PROJECT_CONFIG: record} if record else {}),
            labels.GRANTS: grants.label(),
            **(task or {}),
        },
        run_dir=str((layout or ParentLayout()).worker_run(session)),
        claude=version,
        claude_path=binary,
        setup=overlay.setup,
        grants=grants,
        ssh_agent=ssh_agent if grants.ssh_agent else "",
        git_rw=git[0],
        git_ro=git[1],
    )


# Limits are always set. The config refuses values below the floors (config_schema); a
# WorkerConfig made in code that bypasses those checks gets the defaults instead of no limit.
_DEFAULT = WorkerConfig()


def _memory(cfg: WorkerConfig) -> int:
    try:
        memory = parse_memory(cfg.memory)
    except ValueError:
        memory = 0
    return memory if memory >= WORKER_MIN_MEMORY else parse_memory(_DEFAULT.memory)


def _nano_cpus(cfg: WorkerConfig) -> int:
    if not math.isfinite(cfg.cpus) or cfg.cpus < WORKER_MIN_CPUS:
        return int(_DEFAULT.cpus * 1e9)
    return int(cfg.cpus * 1e9)


def _pids(cfg: WorkerConfig) -> int:
    return cfg.pids if cfg.pids >= WORKER_MIN_PIDS else _DEFAULT.pids


def create_kwargs(spec: WorkerSpec, layout: ParentLayout) -> dict[str, Any]:
    """Keyword arguments for `client.containers.create` (docker-py): the container's
    identity, then its mounts, its confinement and its network, each from its own function."""
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.command),
        "name": spec.container,
        "labels": spec.labels,
        "working_dir": spec.project,
        "environment": dict(spec.env),
        "init": True,
        "detach": True,
        "restart_policy": {"Name": spec.restart},
    }
    if spec.restart == "on-failure":
        kwargs["restart_policy"]["MaximumRetryCount"] = 3
    confined = confinement(spec)
    kwargs["volumes"] = {**mounts(spec, layout), **confined.pop("volumes", {})}
    kwargs.update(confined)
    kwargs.update(network(spec))
    return kwargs


def mounts(spec: WorkerSpec, layout: ParentLayout) -> dict[str, dict[str, str]]:
    """The worker's volumes: its project; its private Claude state as its Claude home; over
    that, read-only, the shared config (settings, CLAUDE.md, agents, commands, skills,
    plugins), and read-write the one shared credentials file; hal-9000's managed settings;
    its own report directory (its hooks write there; no other worker's is ever mounted);
    Claude Code's binary from the parent's store, read-only, on PATH.

    The engine mounts a parent before what lies inside it; every source exists (the parent
    makes them before it creates the worker)."""
    home, state = layout.claude_home, layout.worker_state(spec.session)
    volumes = {
        spec.project: {"bind": spec.project, "mode": "rw"},
        str(state): {"bind": WORKER_CLAUDE_HOME, "mode": "rw"},
    }
    for name in (*SHARED_FILES, *SHARED_DIRS):
        volumes[str(home / name)] = {"bind": f"{WORKER_CLAUDE_HOME}/{name}", "mode": "ro"}
    # a refresh rotates the OAuth token: every worker must see the one new copy
    volumes[str(home / CREDENTIALS)] = {"bind": f"{WORKER_CLAUDE_HOME}/{CREDENTIALS}", "mode": "rw"}
    volumes[str(layout.managed_dir)] = {"bind": WORKER_MANAGED_DIR, "mode": "ro"}
    volumes[str(layout.worker_reports(spec.session))] = {"bind": WORKER_REPORT_DIR, "mode": "rw"}
    if spec.claude_path:  # the store's file, read-only: no worker can change what another runs
        volumes[spec.claude_path] = {"bind": WORKER_CLAUDE_BINARY, "mode": "ro"}
    if spec.ssh_agent:  # the host's SSH agent: opted-in workers only ([identity] ssh_agent)
        volumes[spec.ssh_agent] = {"bind": WORKER_SSH_SOCK, "mode": "ro"}
    volumes.update(git_volumes(spec))
    return volumes


def git_volumes(spec: WorkerSpec) -> dict[str, dict[str, str]]:
    """The repository's git, each at its own path: a task's common `.git` (its worktree's
    `.git` file points there) or a main checkout's `.git` read-write, mounted onto itself so
    that a worker can neither rename it away nor swap it; inside, `config` and `hooks`
    read-only (a worker cannot plant a hook or a `core.fsmonitor` that the host's git would
    run later), and a task's `.git` file and `commondir`/`gitdir` (a worker cannot point the
    host's git at a config of its own). The engine mounts by depth: these land over the
    project's and the `.git` mounts."""
    volumes = {path: {"bind": path, "mode": "rw"} for path in spec.git_rw}
    volumes.update({path: {"bind": path, "mode": "ro"} for path in spec.git_ro})
    return volumes


def identity_env(spec: WorkerSpec) -> dict[str, str]:
    """Where git and ssh find what the worker is given (paths, never a secret): its system
    gitconfig (the host's name and email, the GitHub helper when granted) in its read-only
    run directory, and the SSH agent's socket when bound."""
    env = {"GIT_CONFIG_SYSTEM": f"{WORKER_RUN_DIR}/{GITCONFIG}"} if spec.run_dir else {}
    if spec.ssh_agent:
        env["SSH_AUTH_SOCK"] = WORKER_SSH_SOCK
    return env


PASSWD, GROUP = "passwd", "group"  # the files in `spec.run_dir`, mounted on /etc


def confinement(spec: WorkerSpec) -> dict[str, Any]:
    """Who the worker runs as and what it may use: never root, no capabilities, no new
    privileges, the engine's default seccomp profile (set by leaving it alone), no devices
    but the engine's defaults, no engine socket; a read-only image with tmpfs on /tmp,
    /var/tmp and HOME (the Claude state mounts land on HOME's tmpfs: the engine mounts by
    depth); its passwd and group from the parent, read-only, and their directory (with
    `resume`) read-only at `WORKER_RUN_DIR`; its limits, always set.

    The tmpfs mounts are `exec` (the agent runs what it builds there, as in the project);
    the engine copies the image's directory into each (its mode too: the image's /home/hal
    is 0700); what is written there counts against the worker's memory limit."""
    common = "rw,exec,nosuid,nodev"
    kwargs: dict[str, Any] = {
        "user": f"{spec.uid}:{spec.gid}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "read_only": True,
        "tmpfs": {
            "/tmp": f"{common},mode=1777",  # noqa: S108 - the worker's own tmpfs
            "/var/tmp": f"{common},mode=1777",  # noqa: S108 - the worker's own tmpfs
            WORKER_HOME: f"{common},mode=0700,uid={spec.uid},gid={spec.gid}",
        },
        "mem_limit": spec.memory,
        "memswap_limit": spec.memory,  # no swap beyond the limit (live updates keep it)
        "nano_cpus": spec.nano_cpus,
        "pids_limit": spec.pids,
    }
    if spec.run_dir:
        kwargs["volumes"] = {
            f"{spec.run_dir}/{PASSWD}": {"bind": "/etc/passwd", "mode": "ro"},
            f"{spec.run_dir}/{GROUP}": {"bind": "/etc/group", "mode": "ro"},
            spec.run_dir: {"bind": WORKER_RUN_DIR, "mode": "ro"},
        }
    return kwargs


def network(spec: WorkerSpec) -> dict[str, Any]:
    """The worker's network: its own namespace on the parent's internal network (no route
    out; other workers unreachable), its way out the parent's proxy, named in its
    environment (over `[worker].env`: a worker cannot be told another way out). DNS goes
    to the gateway, where nothing answers: a tool that ignores the proxy resolves no
    outside name, and is told so in about a second rather than twenty (one try, 1 s each)."""
    return {
        "network": WORKER_NETWORK,
        "dns": [GATEWAY],
        "dns_opt": ["timeout:1", "attempts:1"],
        "environment": {**spec.env, **identity_env(spec), **proxy_env()},
    }


def same_spec(attrs: Mapping[str, Any], spec: WorkerSpec) -> bool:
    """The container (its inspect data) was made from `spec`'s template, for `spec`'s user."""
    config = attrs.get("Config") or {}
    found = config.get("Labels") or {}
    return (
        found.get(labels.TEMPLATE) == spec.labels.get(labels.TEMPLATE)
        and found.get(labels.PROJECT_CONFIG, "") == spec.labels.get(labels.PROJECT_CONFIG, "")
        and found.get(labels.CLAUDE, "") == spec.claude  # a restart takes the current version
        and found.get(labels.GRANTS, "") == spec.labels.get(labels.GRANTS, "")
        and config.get("User") == f"{spec.uid}:{spec.gid}"
    )


def limits_body(cfg: WorkerConfig) -> dict[str, int]:
    """The engine's update body for the worker limits of `cfg` (never lifted: see `_memory`)."""
    memory = _memory(cfg)
    return {
        "Memory": memory,
        "MemorySwap": memory,  # no swap beyond the limit (as created)
        "NanoCpus": _nano_cpus(cfg),
        "PidsLimit": _pids(cfg),
    }
