"""Worker container specs: a pure function from config and project to create() arguments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hal_common import __version__, labels
from hal_common.config import WorkerConfig, parse_memory
from hal_common.egress import GATEWAY, WORKER_NETWORK, proxy_env
from hal_common.layout import WORKER_CLAUDE_HOME
from hal_common.naming import container_name, session_name


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


def pick_owner(host_uid: int, host_gid: int, dir_uid: int, dir_gid: int) -> tuple[int, int]:
    """The uid/gid a worker runs as: the host user (the one behind sudo), so that what the
    agent writes is theirs. When that is root, the project's owner: a root-owned project
    under /root is only usable as root, and a project of another user is theirs."""
    if host_uid != 0:
        return host_uid, host_gid
    return dir_uid, dir_gid


LAYOUT = 3  # the mounts and network create_kwargs makes; 2: read-only plugins; 3: the
# internal network (workers made on the parent's host network show as outdated)


def template_hash(cfg: WorkerConfig, image: str | None = None) -> str:
    """What a worker was created from, beyond its limits: a changed one marks it outdated."""
    text = json.dumps([image or cfg.image, list(cfg.command), cfg.restart, sorted(cfg.env), LAYOUT])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def worker_spec(
    project: str,
    cfg: WorkerConfig,
    uid: int,
    gid: int,
    environ: Mapping[str, str],
    session: str | None = None,
    image: str | None = None,
) -> WorkerSpec:
    """The worker for `project`; `[worker].env` names take their values from `environ`."""
    session = session or session_name(project)
    image = image or cfg.image
    env = {k: environ[k] for k in cfg.env if k in environ}
    return WorkerSpec(
        session=session,
        container=container_name(session),
        project=project,
        image=image,
        command=cfg.command,
        uid=uid,
        gid=gid,
        memory=parse_memory(cfg.memory),
        nano_cpus=int(cfg.cpus * 1e9),
        pids=cfg.pids,
        restart=cfg.restart,
        env=env,
        labels={
            **labels.worker_labels(session, project, image, __version__),
            labels.TEMPLATE: template_hash(cfg, image),
        },
    )


def create_kwargs(spec: WorkerSpec, claude_home: str) -> dict[str, Any]:
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
    kwargs["volumes"] = mounts(spec, claude_home)
    kwargs.update(confinement(spec))
    kwargs.update(network(spec))
    return kwargs


def mounts(spec: WorkerSpec, claude_home: str) -> dict[str, dict[str, str]]:
    """The worker's volumes: its project, and its Claude state."""
    return {
        spec.project: {"bind": spec.project, "mode": "rw"},
        claude_home: {"bind": WORKER_CLAUDE_HOME, "mode": "rw"},
        # plugins are shared read-only: `claudy sync` installs them, workers use them
        f"{claude_home}/plugins": {"bind": f"{WORKER_CLAUDE_HOME}/plugins", "mode": "ro"},
    }


def confinement(spec: WorkerSpec) -> dict[str, Any]:
    """Who the worker runs as and what it may use: its user and its limits."""
    kwargs: dict[str, Any] = {"user": f"{spec.uid}:{spec.gid}"}
    if spec.memory:
        kwargs["mem_limit"] = spec.memory
        kwargs["memswap_limit"] = spec.memory  # no swap beyond the limit (live updates keep it)
    if spec.nano_cpus:
        kwargs["nano_cpus"] = spec.nano_cpus
    if spec.pids:
        kwargs["pids_limit"] = spec.pids
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
        "environment": {**spec.env, **proxy_env()},
    }


def same_spec(attrs: Mapping[str, Any], spec: WorkerSpec) -> bool:
    """The container (its inspect data) was made from `spec`'s template, for `spec`'s user."""
    config = attrs.get("Config") or {}
    made = (config.get("Labels") or {}).get(labels.TEMPLATE)
    return (
        made == spec.labels.get(labels.TEMPLATE) and config.get("User") == f"{spec.uid}:{spec.gid}"
    )


def limits_body(cfg: WorkerConfig) -> dict[str, int]:
    """The engine's update body for the worker limits of `cfg`."""
    memory = parse_memory(cfg.memory)
    return {
        "Memory": memory,
        "MemorySwap": memory if memory else -1,  # no swap beyond the limit (as created)
        "NanoCpus": int(cfg.cpus * 1e9),
        "PidsLimit": cfg.pids if cfg.pids else -1,
    }
