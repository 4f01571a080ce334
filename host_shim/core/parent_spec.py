"""The parent container's run spec (pure): its volumes, mounts, security mode and limits."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hal_common import __version__, labels
from hal_common.config import Config, override_vars, parse_memory
from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_common.ports import PortRange

# The parent's paths as the host knows them: the image's, never the host's environment.
PARENT_LAYOUT = ParentLayout()

# The least privilege that runs Docker-in-Docker without --privileged (see README).
CAPS = ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]
SECURITY_OPT = ["seccomp=unconfined", "apparmor=unconfined"]

# Seconds `docker stop`/`restart` and a host shutdown give the parent before SIGKILL: its
# ordered shutdown stops the workers (SIGTERM, each up to 10 s, in parallel), the egress
# boundary, then dockerd (up to 20 s). 60 s covers that with room, and stays inside a host's
# own limit: dockerd waits the longest StopTimeout + 5 s at shutdown, and systemd gives
# docker.service 90 s by default. `claudy stop` and `down` ask for the same.
STOP_TIMEOUT = 60
# The run directory (sockets, the ready file, dockerd.pid, the status, locks, dockerd's exec
# root) is a tmpfs: a restart or a host reboot starts it empty, so nothing stale survives.
RUN_TMPFS = "rw,nosuid,nodev,mode=0755,size=64m"
# A host reboot (or a dockerd restart) brings the parent back, and with it the workers that
# ran; `claudy stop` (docker stop) keeps it stopped until the next `claudy`.
RESTART_POLICY = {"Name": "unless-stopped"}


@dataclass(frozen=True)
class HostUser:
    uid: int
    gid: int
    home: str = ""  # whose secrets (~/.ssh, …) the parent refuses as projects


def volume_names(parent: str, layout: ParentLayout = PARENT_LAYOUT) -> dict[str, str]:
    """Named volumes, per parent name: inner engine data, the shared Claude home, shared data."""
    return {
        str(layout.inner_data_root): f"{parent}-docker",
        str(layout.claude_home): f"{parent}-claude",
        str(layout.data_dir): f"{parent}-data",
    }


# how a change that waits for the parent to be made anew is said (status, doctor, claudy DIR)
RESTART_NEEDED = "restart needed: {key} changed (claudy down && claudy)"


def config_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The host's `HAL9000_<SECTION>_<KEY>` config overrides, which the parent gets at
    create so that its config is the host's (`claudy config show` and `hal-agent config show`
    agree); claudy's own variables (HAL9000_OFFLINE, HAL9000_CONFIG, …) stay on the host."""
    return override_vars(environ)


def env_restart_needed(wanted: Mapping[str, str], container_env: Iterable[str]) -> tuple[str, ...]:
    """The overrides that differ between the host (`wanted`, `config_env`'s) and the parent
    (its `KEY=VALUE` environment, as inspect shows it): set, changed or unset since it was
    created. They apply when it is made anew (`claudy down && claudy`), like `[parent]` keys."""
    had = override_vars(dict(item.partition("=")[::2] for item in container_env))
    return tuple(sorted(k for k in wanted.keys() | had.keys() if wanted.get(k) != had.get(k)))


SSH_AGENT_KEY = "SSH_AUTH_SOCK"  # how a changed agent socket is named in "restart needed"


def ssh_restart_needed(wanted: str, parent_labels: Mapping[str, str]) -> bool:
    """The parent does not bind the SSH agent socket the host has now (`wanted`: a project
    is opted in and `$SSH_AUTH_SOCK` is a socket): none, or another path (a new login). It
    applies when the parent is made anew. A socket it binds that is no longer wanted is no
    reason: no worker is given it."""
    return bool(wanted) and parent_labels.get(labels.SSH_AGENT, "") != wanted


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


def resolve_security(mode: str, runtimes: Collection[str]) -> str:
    if mode != "auto":
        return mode
    return "sysbox" if "sysbox-runc" in runtimes else "caps"


def parent_kwargs(
    cfg: Config,
    roots: tuple[str, ...],
    config_dir: str,
    user: HostUser,
    security: str,
    layout: ParentLayout = PARENT_LAYOUT,
    overrides: Mapping[str, str] | None = None,
    published: PortRange | None = None,
    ssh_agent: str = "",
) -> dict[str, Any]:
    """Keyword arguments for `client.containers.run` of the parent (docker-py), plus
    `stop_timeout`, which docker-py's `run` does not take (`HostEngine.run_container` sets it
    through the create API). `overrides`: the host's config overrides (`config_env`).
    `published`: the host ports it publishes, each on the same port inside (the parent's
    relays listen there), on `[parent] ports_address`; None: none.
    `ssh_agent`: the host's SSH agent socket to bind (`wanted_ssh_agent`; "" none), named
    in a label so that another one later says "restart needed"."""
    volumes: dict[str, dict[str, str]] = {
        vol: {"bind": target, "mode": "rw"}
        for target, vol in volume_names(cfg.parent.name, layout).items()
    }
    volumes[config_dir] = {"bind": str(layout.config_dir), "mode": "rw"}
    for root in roots:
        volumes[root] = {"bind": root, "mode": "rw"}  # the same absolute path inside
    if ssh_agent:
        volumes[ssh_agent] = {"bind": str(layout.ssh_agent_sock), "mode": "rw"}
    if security == "caps":
        volumes["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
    kwargs: dict[str, Any] = {
        "image": cfg.parent.image,
        "name": cfg.parent.name,
        "hostname": "hal9000",
        "labels": {**labels.parent_labels(__version__), labels.SSH_AGENT: ssh_agent},
        "volumes": volumes,
        "environment": {
            "HAL_HOST_UID": str(user.uid),
            "HAL_HOST_GID": str(user.gid),
            "HAL_ROOTS": ":".join(roots),
            # the path policy's inputs: the host user's home and hal-9000's config directory
            "HAL_HOST_HOME": user.home,
            "HAL_HOST_CONFIG_DIR": config_dir,
            **(overrides or {}),
            **published_env(cfg, published),
        },
        "detach": True,
        "restart_policy": dict(RESTART_POLICY),
        "tmpfs": {str(layout.run_dir): RUN_TMPFS},
        "stop_timeout": STOP_TIMEOUT,
        **security_kwargs(security),
    }
    if published is not None:
        kwargs["ports"] = published_ports(cfg, published)
        kwargs["labels"] = {**kwargs["labels"], labels.PORTS: str(published)}
    if memory := parse_memory(cfg.parent.memory):
        kwargs["mem_limit"] = memory
    if cfg.parent.cpus:
        kwargs["nano_cpus"] = int(cfg.parent.cpus * 1e9)
    return kwargs


def published_env(cfg: Config, published: PortRange | None) -> dict[str, str]:
    """What the parent is told of its published range (`ParentLayout.ports`)."""
    if published is None:
        return {}
    return {"HAL_PORTS": str(published), "HAL_PORTS_ADDRESS": cfg.parent.ports_address}


def published_ports(cfg: Config, published: PortRange) -> dict[str, tuple[str, int]]:
    """docker-py's `ports`: each host port of the range, on the configured host address only
    (the loopback by default: nothing else on the network reaches a worker's server), to
    the same port in the parent."""
    return {f"{p}/tcp": (cfg.parent.ports_address, p) for p in published}
