"""`[services.NAME]`: shared service containers in the inner engine, one per enabled table.

Three are built in and on by default, all from the services image (`Dockerfile.services`):
`chromadb` (a ChromaDB server with token auth, data under /data/services/chromadb),
`chroma-mcp` (Chroma's MCP server) and `memory-bank` (the Memory Bank MCP server, one root
for every project). A table of the same name changes or disables one (`enabled = false`).

A table names an `image` (present in the parent's engine) and optionally a `command` (argv;
its first word replaces the image's entrypoint), `env` (a table of strings), `network`
(default `host`, the parent's namespace, so every worker reaches it on localhost), `port`
(the port it listens on, for health and for MCP) and `mcp = true` (it serves MCP over
streamable HTTP at `mcp_path`, default `/mcp`, and is registered for every worker).
`stdio = [argv]` runs a stdio MCP server behind the image's stdio-to-HTTP bridge instead:
one process serves every worker.

The containers are labelled (role `service`); reconciling starts what is enabled, recreates
what changed and removes what is gone or disabled. A broken service is reported (dashboard,
`hal-agent services`, `hal-agent doctor`), never fatal: workers start without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from hal_common import __version__, labels, paths
from hal_common.shared_services import effective, mcp_entries, running
from parent_agent.core.model import ServiceState

log = logging.getLogger(__name__)

PREFIX = "hal9000-s-"
SPEC = f"{labels.PREFIX}.spec"


def service_data() -> Path:
    """Where services keep their data: /data/services in the parent's data volume."""
    return paths.PARENT_DATA / "services"


def token_file() -> Path:
    """ChromaDB's token; mounted (read-only) where it is needed."""
    return service_data() / "chromadb.token"


TOKEN_IN_CONTAINER = "/run/hal/token"  # noqa: S105 - a path
CPU_SHARES = 256
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def _port(name: str, table: dict[str, Any]) -> int | None:
    port = table.get("port")
    if port is None:
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"[services.{name}].port must be a port number, got {port!r}")
    return port


def service_kwargs(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """create() arguments for one service table (pure); ValueError says what is wrong."""
    image = table.get("image")
    if not isinstance(image, str) or not image:
        raise ValueError(f"[services.{name}] needs an image (or stdio = [a stdio MCP server])")
    command = table.get("command", [])
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise ValueError(f"[services.{name}].command must be a list of strings")
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ValueError(f"[services.{name}].env must be a table of strings")
    port = _port(name, table)
    if table.get("mcp") and port is None:
        raise ValueError(f"[services.{name}] serves MCP, so it needs a port")
    spec = hashlib.sha256(json.dumps(table, sort_keys=True, default=str).encode()).hexdigest()
    volumes: dict[str, dict[str, str]] = {}
    if isinstance(table.get("data"), str):
        volumes[str(service_data() / table["data"])] = {"bind": "/data", "mode": "rw"}
    if table.get("token"):
        volumes[str(token_file())] = {"bind": TOKEN_IN_CONTAINER, "mode": "ro"}
    kwargs: dict[str, Any] = {
        "image": image,
        "name": PREFIX + name,
        "labels": {
            labels.MANAGED: "true",
            labels.ROLE: "service",
            labels.SESSION: name,
            labels.VERSION: __version__,
            SPEC: spec[:12],
        },
        "environment": {**env, **({"HAL_PORT": str(port)} if port else {})},
        "volumes": volumes,
        "network_mode": str(table.get("network", "host")),
        # a quarter of a worker's CPU weight: under load, the agents and the parent's own
        # processes (tmux, the dashboard) come first; an idle machine gives services all
        "cpu_shares": CPU_SHARES,
        "init": True,
        "detach": True,
        # a crash is retried a few times, then left exited, so that health can say why
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5},
    }
    if command:
        kwargs["entrypoint"] = command[:1]
        kwargs["command"] = command[1:]
    return kwargs


def ensure_token(path: Path | None = None) -> str:
    """ChromaDB's token: made once, kept in the data volume, 0600."""
    path = token_file() if path is None else path
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)  # no newline: ChromaDB compares the file's lines with the header
    return token


def prepare_data(wanted: dict[str, dict[str, Any]]) -> None:
    for table in wanted.values():
        if isinstance(table.get("data"), str):
            (service_data() / table["data"]).mkdir(parents=True, exist_ok=True)
        if table.get("token"):
            ensure_token()


def reconcile_services(
    client: docker.DockerClient, services: dict[str, dict[str, Any]]
) -> list[str]:
    """Make the engine's service containers match the enabled tables; returns the errors."""
    errors: list[str] = []
    wanted = running(services)
    try:
        have = {c.labels.get(labels.SESSION, ""): c for c in client.containers.list(
            all=True, filters=labels.managed_filter("service"))}  # fmt: skip
    except ENGINE_ERRORS as e:
        return [f"services: engine unavailable ({e})"]
    for name, c in have.items():
        if name not in wanted:
            _remove(c, errors, f"service {name} stopped (disabled)")
    try:
        prepare_data(wanted)
    except OSError as e:
        errors.append(f"services: cannot prepare {service_data()}: {e}")
    for name, table in wanted.items():
        try:
            kwargs = service_kwargs(name, table)
        except ValueError as e:
            errors.append(str(e))
            continue
        current = have.get(name)
        if current is not None and current.labels.get(SPEC) == kwargs["labels"][SPEC]:
            if current.status != "running":
                _call(current.start, errors, f"service {name}")
            continue
        if current is not None:
            _remove(current, errors, f"service {name} changed; recreating")
        try:
            client.containers.run(**kwargs)
            log.info("service %s started", name)
        except docker.errors.ImageNotFound:
            errors.append(f"service {name} did not start: image {kwargs['image']} is missing "
                          "(claudy on the host loads it)")  # fmt: skip
        except ENGINE_ERRORS as e:
            errors.append(f"service {name} did not start: {e}")
    return errors


def _remove(c: Any, errors: list[str], note: str) -> None:
    if _call(lambda: c.remove(force=True), errors, note):
        log.info("%s", note)


def _call(fn: Any, errors: list[str], what: str) -> bool:
    try:
        fn()
        return True
    except ENGINE_ERRORS as e:
        errors.append(f"{what}: {e}")
        return False


# --- health ------------------------------------------------------------------------------------


def port_open(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def states(
    services: dict[str, dict[str, Any]],
    containers: dict[str, dict[str, Any]],
    probe: Callable[[int], bool] = port_open,
) -> list[ServiceState]:
    """Each service's health from its table and its container's inspect data (pure but
    for `probe`). A service that is not ok says why, in words a user can act on."""
    out = []
    for name, table in effective(services).items():
        port = table.get("port") if isinstance(table.get("port"), int) else None
        mcp = bool(table.get("mcp"))
        ok, state, detail = _health(table, containers.get(name), port, probe)
        out.append(ServiceState(name, ok, state, detail, port, mcp))
    return out


def _health(
    table: dict[str, Any],
    attrs: dict[str, Any] | None,
    port: int | None,
    probe: Callable[[int], bool],
) -> tuple[bool, str, str]:
    if table.get("enabled", True) is False:
        return False, "disabled", "enabled = false in the config"
    if attrs is None:
        return False, "missing", "not created (see the errors)"
    st = attrs.get("State", {})
    restarts = int(attrs.get("RestartCount", 0) or 0)
    again = f", {restarts} restart{'s' if restarts != 1 else ''}" if restarts else ""
    if st.get("Restarting"):
        return False, "restarting", f"crashing (exit {st.get('ExitCode')}{again})"
    if not st.get("Running"):
        why = f"exited {st.get('ExitCode')}{again}"
        return False, "exited", why + (f": {st['Error']}" if st.get("Error") else "")
    if port is not None and not probe(port):
        return False, "starting", f"not answering on :{port} yet{again}"
    top = attrs.get(TOP)
    if table.get("mcp") and isinstance(top, list) and not [a for a in top if not is_wrapper(a)]:
        # the bridge outlives its stdio server: it answers, but every call fails
        return False, "broken", "the MCP server behind the bridge exited (--restart it)"
    return True, "ok", (f":{port}" if port else "") + again


WRAPPERS = {"docker-init", "mcp-proxy", "hal-service", "hal-chroma-mcp", "sh"}


def is_wrapper(args: str) -> bool:
    """A process that runs or bridges the server rather than being it (by its program or,
    for an interpreter, its script)."""
    return bool({os.path.basename(w) for w in args.split()[:2]} & WRAPPERS)


TOP = "_hal_top"  # the argv of each process, added to the inspect data of a running service


def inspect_all(client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    """Inspect data of the service containers, by service name, with their processes."""
    found = client.containers.list(all=True, filters=labels.managed_filter("service"))
    out = {}
    for c in found:
        attrs = dict(c.attrs)
        if c.status == "running":
            try:
                top = c.top(ps_args="-eo pid,args")  # the engine insists on a PID column
                attrs[TOP] = [str(p[-1]) for p in top.get("Processes") or []]
            except ENGINE_ERRORS:
                pass
        out[c.labels.get(labels.SESSION, "")] = attrs
    return out


def last_log_line(client: docker.DockerClient, name: str) -> str:
    try:
        raw = client.containers.get(PREFIX + name).logs(tail=5).decode(errors="replace")
    except ENGINE_ERRORS:
        return ""
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def publish(services: dict[str, dict[str, Any]], home: Path | None = None) -> None:
    """What workers need to use the services: the MCP servers registered in the shared
    `.claude.json`, and ChromaDB's token beside it. Workers started before see it too
    (Claude Code reads `.claude.json` when it starts, and `claude mcp list` on every call)."""
    from parent_agent.adapters import claude_home

    home = paths.PARENT_CLAUDE_HOME if home is None else home
    uid, gid = claude_home.default_owner(home)
    claude_home.register_mcp(home, mcp_entries(services), uid, gid)
    chroma = running(services).get("chromadb")
    token = None
    if chroma is not None and chroma.get("token"):
        try:
            token = token_file().read_text().strip()
        except OSError:
            token = None
    claude_home.share_token(home, token, uid, gid)


def apply(client: docker.DockerClient, services: dict[str, dict[str, Any]]) -> list[str]:
    """Reconcile the service containers, then publish them to workers; the errors."""
    errors = reconcile_services(client, services)
    try:
        publish(services)
    except OSError as e:
        errors.append(f"services: cannot register them for workers: {e}")
    return errors


def restart(
    client: docker.DockerClient, services: dict[str, dict[str, Any]], names: tuple[str, ...]
) -> list[str]:
    """Restart the named services (made anew when missing); the errors, if any."""
    known = running(services)
    for name in names:
        if name not in known:
            return [f"no enabled service {name} (hal-agent services lists them)"]
    for error in apply(client, services):  # creates what is missing
        log.warning("%s", error)  # the loop reconciles too; only the named ones matter here
    errors: list[str] = []
    for name in names:
        try:
            client.containers.get(PREFIX + name).restart(timeout=10)
        except ENGINE_ERRORS as e:
            errors.append(f"service {name}: {e}")
    return errors


def wait_for_mcp(
    client: docker.DockerClient, services: dict[str, dict[str, Any]], timeout: float = 20.0
) -> list[str]:
    """Wait (up to `timeout`) for the MCP services to answer, so that a Claude Code starting
    now connects to them; returns the ones still silent. Waited for: a service that runs,
    or is about to (the loop starts them in the background; its image is there). Not
    waited for: one that is off, exited or crashing, or whose image is missing."""
    tables = {n: t for n, t in running(services).items()
              if t.get("mcp") and isinstance(t.get("port"), int)}  # fmt: skip
    deadline = time.monotonic() + timeout
    waiting = dict(tables)
    while waiting:
        try:  # one sparse list call: no inspect per container
            listed = client.api.containers(all=True, filters=labels.managed_filter("service"))
            found = {
                (c.get("Labels") or {}).get(labels.SESSION, ""): c.get("State") for c in listed
            }
        except ENGINE_ERRORS:
            return sorted(waiting)
        for name, table in list(waiting.items()):
            state = found.get(name)
            if state is None:
                if not _have_image(client, str(table.get("image", ""))):
                    del waiting[name]
            elif state not in ("running", "created"):
                del waiting[name]  # exited or restarting: broken, never waited for
            elif state == "running" and port_open(table["port"], timeout=0.2):
                del waiting[name]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return sorted(waiting)


def _have_image(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
        return True
    except ENGINE_ERRORS:
        return False
