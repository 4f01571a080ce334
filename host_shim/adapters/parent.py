"""The parent container: its run spec (pure) and `ensure_parent` (the adapter)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from hal_common import __version__, labels, paths
from hal_common.config import Config, parse_memory
from hal_common.errors import EngineUnavailable, HalError
from hal_io.engine import run_in, translated

log = logging.getLogger(__name__)


def volume_names(parent: str) -> dict[str, str]:
    """Named volumes, per parent name: inner engine data, the shared Claude home, shared data."""
    return {
        str(paths.INNER_DATA_ROOT): f"{parent}-docker",
        str(paths.PARENT_CLAUDE_HOME): f"{parent}-claude",
        str(paths.PARENT_DATA): f"{parent}-data",
    }


# The least privilege that runs Docker-in-Docker without --privileged (see README).
CAPS = ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]
SECURITY_OPT = ["seccomp=unconfined", "apparmor=unconfined"]


@dataclass(frozen=True)
class HostUser:
    uid: int
    gid: int


def security_kwargs(mode: str) -> dict[str, Any]:
    """Options for one security mode (`auto` is resolved by the caller)."""
    if mode == "privileged":
        return {"privileged": True}
    if mode == "sysbox":
        return {"runtime": "sysbox-runc"}
    if mode == "caps":
        return {
            "cap_add": CAPS,
            "security_opt": SECURITY_OPT,
            "device_cgroup_rules": ["a *:* rwm"],
        }
    raise HalError(f"unknown security mode {mode!r}")


def resolve_security(mode: str, runtimes: set[str]) -> str:
    if mode != "auto":
        return mode
    return "sysbox" if "sysbox-runc" in runtimes else "caps"


def parent_kwargs(
    cfg: Config, roots: tuple[str, ...], config_dir: str, user: HostUser, security: str
) -> dict[str, Any]:
    """Keyword arguments for `client.containers.run` of the parent (docker-py)."""
    volumes: dict[str, dict[str, str]] = {
        vol: {"bind": target, "mode": "rw"} for target, vol in volume_names(cfg.parent.name).items()
    }
    volumes[config_dir] = {"bind": str(paths.PARENT_CONFIG_DIR), "mode": "rw"}
    for root in roots:
        volumes[root] = {"bind": root, "mode": "rw"}  # the same absolute path inside
    if security == "caps":
        volumes["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
    kwargs: dict[str, Any] = {
        "image": cfg.parent.image,
        "name": cfg.parent.name,
        "hostname": "hal9000",
        "labels": labels.parent_labels(__version__),
        "volumes": volumes,
        "environment": {
            "HAL_HOST_UID": str(user.uid),
            "HAL_HOST_GID": str(user.gid),
            "HAL_ROOTS": ":".join(roots),
        },
        "detach": True,
        "restart_policy": {"Name": "unless-stopped"},
        **security_kwargs(security),
    }
    if memory := parse_memory(cfg.parent.memory):
        kwargs["mem_limit"] = memory
    if cfg.parent.cpus:
        kwargs["nano_cpus"] = int(cfg.parent.cpus * 1e9)
    return kwargs


def find_parent(client: docker.DockerClient, name: str) -> Container | None:
    with translated("looking up the parent"):
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            return None


def running_parent(client: docker.DockerClient, name: str) -> Container:
    """The parent, which must be running (for commands that run something in it)."""
    parent = find_parent(client, name)
    if parent is None or parent.status != "running":
        raise EngineUnavailable(
            f"the parent {name} is not running",
            hint="`claudy DIR` starts it (claudy status shows it)",
        )
    return parent


def _outdated(client: docker.DockerClient, c: Container, cfg: Config) -> bool:
    try:
        return str(client.images.get(cfg.parent.image).id) != str(c.attrs.get("Image"))
    except docker.errors.ImageNotFound:
        return False


def ensure_parent(
    client: docker.DockerClient,
    cfg: Config,
    roots: tuple[str, ...],
    config_dir: str,
    user: HostUser,
    ready_timeout: float = 90.0,
) -> tuple[Container, bool]:
    """The running, ready parent; (container, created_or_started)."""
    changed = False
    c = find_parent(client, cfg.parent.name)
    with translated("starting the parent"):
        if c is not None and c.labels.get(labels.ROLE) != labels.ROLE_PARENT:
            raise HalError(
                f"a container named {cfg.parent.name} exists but is not hal-9000's parent",
                hint="rename it, or set [parent].name in the config",
            )
        if c is not None and c.status in ("exited", "created") and _outdated(client, c, cfg):
            # nothing runs in it: a stopped parent from an older image is made anew (its
            # volumes, so the Claude home, the inner images and the data, stay)
            log.info("recreating the stopped parent from the current image")
            c.remove()
            c = None
        if c is None:
            runtimes = set((client.info().get("Runtimes") or {}).keys())
            security = resolve_security(cfg.parent.security, runtimes)
            log.info("creating parent", extra={"security": security})
            c = client.containers.run(**parent_kwargs(cfg, roots, config_dir, user, security))
            changed = True
        elif c.status == "restarting":
            tail = c.logs(tail=15).decode(errors="replace").strip()
            raise HalError(
                f"the parent {cfg.parent.name} keeps crashing; last lines of its log:\n{tail}",
                hint="claudy doctor; `claudy down && claudy` recreates it (volumes stay)",
            )
        elif c.status != "running":
            c.start()
            changed = True
    quick = not changed and run_in(c, ["test", "-e", str(paths.READY_FILE)])[0] == 0
    code, out = (
        (0, "") if quick else run_in(c, ["hal-agent", "ready", "--timeout", str(ready_timeout)])
    )
    if code != 0:
        with translated("reading the parent's log"):
            tail = c.logs(tail=15).decode(errors="replace").strip()
        raise HalError(
            f"the parent did not become ready: {out.strip() or 'it is not running'}\n"
            f"last lines of its log:\n{tail}",
            hint="claudy doctor checks privileges; `docker logs "
            f"{cfg.parent.name}` shows the agent's log",
        )
    return c, changed
