"""`[services.NAME]`: the shared service containers in the inner engine. This module only
acts; what to do is decided in `parent_agent.core.services` (the plan, the actions, health),
and only the agent loop (through `parent_agent.app.service_owner`) asks it to create,
recreate or remove containers. Commands read through it (health, logs).

Three services are built in and on by default, all from the services image
(`Dockerfile.services`): `chromadb` (a ChromaDB server with token auth, data under
/data/services/chromadb), `chroma-mcp` (Chroma's MCP server) and `memory-bank` (the Memory
Bank MCP server, one root for every project); `docs/config.md` lists a table's keys. The
containers are labelled (role `service`). A broken service is reported (dashboard,
`hal-agent services`, `hal-agent doctor`), never fatal: workers start without it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from hal_common import labels, paths
from parent_agent.core.services import (
    SPEC,
    TOP,
    Found,
    McpWait,
    RemoveService,
    ServicePlan,
    StartService,
    actions,
    container_name,
)

log = logging.getLogger(__name__)

ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def service_data() -> Path:
    """Where services keep their data: /data/services in the parent's data volume."""
    return paths.PARENT_DATA / "services"


def ensure_token(path: Path) -> str:
    """ChromaDB's token: made once, kept in the data volume, 0600."""
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


def shared_token(plan: ServicePlan) -> str | None:
    """The token clients in workers need, when ChromaDB runs with one and it exists."""
    if not plan.share_token or plan.token is None:
        return None
    try:
        return plan.token.read_text().strip()
    except OSError:
        return None


def prepare_data(plan: ServicePlan) -> None:
    for d in plan.data_dirs:
        d.mkdir(parents=True, exist_ok=True)
    if plan.token is not None:
        ensure_token(plan.token)


def found(client: docker.DockerClient) -> list[Found]:
    """The service containers the engine has, by label."""
    listed = client.containers.list(all=True, filters=labels.managed_filter("service"))
    return [
        Found(c.labels.get(labels.SESSION, ""), str(c.status), c.labels.get(SPEC, ""), str(c.id))
        for c in listed
    ]


def reconcile(client: docker.DockerClient, plan: ServicePlan) -> list[str]:
    """Make the engine's service containers match the plan; returns the errors."""
    errors: list[str] = list(plan.errors)
    try:
        have = found(client)
    except ENGINE_ERRORS as e:
        return [f"services: engine unavailable ({e})"]
    try:
        prepare_data(plan)
    except OSError as e:
        errors.append(f"services: cannot prepare {service_data()}: {e}")
    for action in actions(plan, have):
        if isinstance(action, RemoveService):
            try:
                client.containers.get(action.id).remove(force=True)
                log.info("%s", action.note)
            except ENGINE_ERRORS as e:
                errors.append(f"{action.note}: {e}")
        elif isinstance(action, StartService):
            try:
                client.containers.get(action.id).start()
            except ENGINE_ERRORS as e:
                errors.append(f"service {action.name}: {e}")
        else:
            w = action.wanted
            try:
                client.containers.run(**w.kwargs, detach=True)
                log.info("service %s started", w.name)
            except docker.errors.ImageNotFound:
                errors.append(f"service {w.name} did not start: image {w.image} is missing "
                              "(claudy on the host loads it)")  # fmt: skip
            except ENGINE_ERRORS as e:
                errors.append(f"service {w.name} did not start: {e}")
    return errors


def restart(client: docker.DockerClient, names: Iterable[str]) -> list[str]:
    """Restart the named service containers; the errors, if any."""
    errors: list[str] = []
    for name in names:
        try:
            client.containers.get(container_name(name)).restart(timeout=10)
        except ENGINE_ERRORS as e:
            errors.append(f"service {name}: {e}")
    return errors


# --- reading ------------------------------------------------------------------------------


def port_open(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def inspect_all(client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    """Inspect data of the service containers, by service name, with their processes."""
    listed = client.containers.list(all=True, filters=labels.managed_filter("service"))
    out = {}
    for c in listed:
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
        raw = client.containers.get(container_name(name)).logs(tail=5).decode(errors="replace")
    except ENGINE_ERRORS:
        return ""
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def wait_for_mcp(
    client: docker.DockerClient, waits: Iterable[McpWait], timeout: float = 20.0
) -> list[str]:
    """Wait (up to `timeout`) for the MCP services to answer, so that a Claude Code starting
    now connects to them; returns the ones still silent. Waited for: a service that runs,
    or is about to (the loop starts them in the background; its image is there). Not
    waited for: one that is exited or crashing, or whose image is missing."""
    deadline = time.monotonic() + timeout
    waiting = {w.name: w for w in waits}
    while waiting:
        try:  # one sparse list call: no inspect per container
            listed = client.api.containers(all=True, filters=labels.managed_filter("service"))
            state = {
                (c.get("Labels") or {}).get(labels.SESSION, ""): c.get("State") for c in listed
            }
        except ENGINE_ERRORS:
            return sorted(waiting)
        for name, w in list(waiting.items()):
            now = state.get(name)
            if now is None:
                if not _have_image(client, w.image):
                    del waiting[name]
            elif now not in ("running", "created"):
                del waiting[name]  # exited or restarting: broken, never waited for
            elif now == "running" and port_open(w.port, timeout=0.2):
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
