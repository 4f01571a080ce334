"""The shared services, pure: specs → container create arguments, a reconcile plan, health
from inspect data, and the MCP servers workers are told about.

Plain functions of plain data (`hal_common.shared_services.ServiceSpec`, the engine's
inspect dicts); `parent_agent.adapters.services` acts on what they decide, and the loop
(`parent_agent.app.agent`) is the only one that asks it to.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal_common import __version__, labels
from hal_common.egress import GATEWAY
from hal_common.shared_services import ServiceSpec, problems, running
from parent_agent.core.model import ServiceState

PREFIX = "hal9000-s-"
SPEC = f"{labels.PREFIX}.spec"  # a digest of the create arguments: changed → recreated
ROLE = "service"
# The services' one bearer token: every gate wants it, and ChromaDB checks it too (its
# clients in workers send one Authorization header, which must pass the gate and ChromaDB).
# The same file as `ParentLayout.mcp_token_file`.
TOKEN_NAME = "mcp.token"  # noqa: S105 - a file name, beside the services' data
TOKEN_IN_CONTAINER = "/run/hal/token"  # noqa: S105 - a path
CPU_SHARES = 256


def container_name(name: str) -> str:
    return PREFIX + name


def token_file(data_root: Path) -> Path:
    """The services' bearer token (the gates', ChromaDB's), in the services' data; mounted
    read-only into the services that check it, never into a worker."""
    return data_root / TOKEN_NAME


def create_kwargs(spec: ServiceSpec, data_root: Path) -> dict[str, Any]:
    """The engine's create arguments for one (valid, enabled) spec; `data_root` is where
    the services keep their data (/data/services)."""
    volumes: dict[str, dict[str, str]] = {}
    if spec.data:
        volumes[str(data_root / spec.data)] = {"bind": "/data", "mode": "rw"}
    if spec.token:
        volumes[str(token_file(data_root))] = {"bind": TOKEN_IN_CONTAINER, "mode": "ro"}
    port = {"HAL_PORT": str(spec.port)} if spec.port is not None else {}
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": container_name(spec.name),
        "environment": {**spec.environment, **port},
        "volumes": volumes,
        "network_mode": spec.network,
        # a quarter of a worker's CPU weight: under load, the agents and the parent's own
        # processes (tmux, the dashboard) come first; an idle machine gives services all
        "cpu_shares": CPU_SHARES,
        "init": True,
        # a crash is retried a few times, then left exited, so that health can say why
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5},
    }
    if spec.command:
        kwargs["entrypoint"] = list(spec.command[:1])
        kwargs["command"] = list(spec.command[1:])
    digest = hashlib.sha256(json.dumps(kwargs, sort_keys=True).encode()).hexdigest()[:12]
    kwargs["labels"] = {
        labels.MANAGED: "true",
        labels.ROLE: ROLE,
        labels.SESSION: spec.name,
        labels.VERSION: __version__,
        SPEC: digest,
    }
    return kwargs


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """One service that should run: its name and create arguments."""

    name: str
    kwargs: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return str(self.kwargs["labels"][SPEC])

    @property
    def image(self) -> str:
        return str(self.kwargs["image"])


@dataclass(frozen=True)
class McpWait:
    """An MCP service a new worker's spawn waits for (briefly), so its agent connects."""

    name: str
    port: int
    image: str


@dataclass(frozen=True)
class ServicePlan:
    """What the enabled services need, computed once from the specs: the containers, the
    data directories and token to prepare, and what workers are told (MCP servers, the
    token)."""

    wanted: tuple[Wanted, ...] = ()
    data_dirs: tuple[Path, ...] = ()
    token: Path | None = None  # the bearer token's file: made when any service runs
    share_token: bool = False  # ChromaDB runs with its token: clients in workers need it
    mcp: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # the gates workers reach the services through: {port on the gateway: port on 127.0.0.1}
    gates: Mapping[int, int] = field(default_factory=dict)
    waits: tuple[McpWait, ...] = ()
    # enabled but unable to start (no image; MCP without a port): reported, left as they are
    errors: tuple[str, ...] = ()
    broken: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.wanted)

    @property
    def images(self) -> frozenset[str]:
        return frozenset(w.image for w in self.wanted)


def gate_url(spec: ServiceSpec) -> str | None:
    """Where a worker reaches a service's MCP server: its gate on the workers' gateway."""
    if not spec.mcp or spec.port is None:
        return None
    return f"http://{GATEWAY}:{spec.port}{spec.mcp_path}"


def mcp_entries(specs: Iterable[ServiceSpec], token: str) -> dict[str, dict[str, Any]]:
    """The `mcpServers` entries of a worker's `.claude.json` for the enabled MCP services:
    each through its gate, with the bearer token the gate wants."""
    auth = {"Authorization": f"Bearer {token}"}
    return {
        s.name: {"type": "http", "url": url, "headers": dict(auth)}
        for s in running(specs)
        if (url := gate_url(s))
    }


def plan(specs: Iterable[ServiceSpec], data_root: Path, token: str = "") -> ServicePlan:
    """The plan for `specs` (the config's, disabled ones included) with data under
    `data_root`; `token` is the services' bearer token (`token_file`), for the MCP entries
    workers are told."""
    enabled = running(specs)
    broken = tuple(s.name for s in enabled if problems(s))
    errors = tuple(f"[services.{s.name}] {p}" for s in enabled for p in problems(s))
    on = tuple(s for s in enabled if s.name not in broken)
    return ServicePlan(
        wanted=tuple(Wanted(s.name, create_kwargs(s, data_root)) for s in on),
        data_dirs=tuple(data_root / s.data for s in on if s.data),
        token=token_file(data_root) if on else None,
        share_token=any(s.name == "chromadb" and s.token for s in on),
        mcp=mcp_entries(on, token),
        gates={s.port: s.port for s in on if s.port is not None},
        waits=tuple(McpWait(s.name, s.port, s.image) for s in on if s.mcp and s.port is not None),
        errors=errors,
        broken=broken,
    )


@dataclass(frozen=True)
class Found:
    """A service container the engine lists: its service, state, spec digest and id."""

    name: str
    status: str
    digest: str
    id: str


@dataclass(frozen=True)
class RemoveService:
    name: str
    id: str
    note: str  # what is logged once it is gone


@dataclass(frozen=True)
class StartService:
    name: str
    id: str


@dataclass(frozen=True)
class CreateService:
    wanted: Wanted


Action = RemoveService | StartService | CreateService


def actions(p: ServicePlan, found: Iterable[Found]) -> list[Action]:
    """What makes the engine's service containers match the plan: the ones not wanted are
    removed, a changed one is recreated, a stopped one started, a missing one created.
    A broken one's container (from before it broke) is left as it is."""
    have = {f.name: f for f in found}
    out: list[Action] = [
        RemoveService(name, f.id, f"service {name} stopped (disabled)")
        for name, f in have.items()
        if name not in p.names and name not in p.broken
    ]
    for w in p.wanted:
        current = have.get(w.name)
        if current is not None and current.digest == w.digest:
            if current.status != "running":
                out.append(StartService(w.name, current.id))
            continue
        if current is not None:
            out.append(RemoveService(w.name, current.id, f"service {w.name} changed; recreating"))
        out.append(CreateService(w))
    return out


# --- health -------------------------------------------------------------------------------

TOP = "_hal_top"  # the argv of each process, added to the inspect data of a running service
WRAPPERS = {"docker-init", "mcp-proxy", "hal-service", "hal-chroma-mcp", "sh"}


def is_wrapper(args: str) -> bool:
    """A process that runs or bridges the server rather than being it (by its program or,
    for an interpreter, its script)."""
    return bool({os.path.basename(w) for w in args.split()[:2]} & WRAPPERS)


Waiting = Callable[[str], tuple[str, str] | None]


def states(
    specs: Iterable[ServiceSpec],
    containers: Mapping[str, Mapping[str, Any]],
    probe: Callable[[int], bool],
    waiting: Waiting | None = None,
) -> list[ServiceState]:
    """Each service's health from its spec and its container's inspect data (`probe` says
    whether a port answers; `waiting`, for an image, (state, detail) while the engine does
    not have it: the services image builds in the background on a first run). A service
    that is not ok says why, in words a user can act on."""
    out = []
    for s in specs:
        ok, state, detail = health(s, containers.get(s.name), probe, waiting)
        out.append(ServiceState(s.name, ok, state, detail, s.port, s.mcp))
    return out


def health(
    spec: ServiceSpec,
    attrs: Mapping[str, Any] | None,
    probe: Callable[[int], bool],
    waiting: Waiting | None = None,
) -> tuple[bool, str, str]:
    """(ok, state, detail) of one service."""
    if not spec.enabled:
        return False, "disabled", "enabled = false in the config"
    if attrs is None:
        wait = waiting(spec.image) if waiting is not None else None
        if wait is not None:
            return False, *wait
        return False, "missing", "not created (see the errors)"
    st = attrs.get("State", {})
    restarts = int(attrs.get("RestartCount", 0) or 0)
    again = f", {restarts} restart{'s' if restarts != 1 else ''}" if restarts else ""
    if st.get("Restarting"):
        return False, "restarting", f"crashing (exit {st.get('ExitCode')}{again})"
    if st.get("Status") == "created" and not st.get("Error"):
        # between create and start (the reconcile does both): not a failure
        return False, "starting", f"created, not started yet{again}"
    if not st.get("Running"):
        why = f"exited {st.get('ExitCode')}{again}"
        return False, "exited", why + (f": {st['Error']}" if st.get("Error") else "")
    if spec.port is not None and not probe(spec.port):
        return False, "starting", f"not answering on :{spec.port} yet{again}"
    top = attrs.get(TOP)
    if spec.mcp and isinstance(top, list) and not [a for a in top if not is_wrapper(a)]:
        # the bridge outlives its stdio server: it answers, but every call fails
        return False, "broken", "the MCP server behind the bridge exited (--restart it)"
    return True, "ok", (f":{spec.port}" if spec.port is not None else "") + again


# --- registration in Claude's state -------------------------------------------------------


def with_mcp(
    state: Mapping[str, Any], entries: Mapping[str, Mapping[str, str]], managed: Iterable[str]
) -> dict[str, Any]:
    """Claude's state with our MCP servers set and our stale ones gone; the user's stay."""
    gone = set(managed)
    servers = {k: v for k, v in (state.get("mcpServers") or {}).items() if k not in gone}
    servers.update({k: dict(v) for k, v in entries.items()})
    return {**state, "mcpServers": servers}
