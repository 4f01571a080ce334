"""`[services.NAME]`: the shared service containers in the inner engine. This module only
acts; what to do is decided in `parent_agent.core.services` (the plan, the actions, health),
and only the agent loop (through `parent_agent.app.service_runner`) asks it to create,
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
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hal_common import labels
from hal_common.errors import HalError, ImageMissing
from hal_common.layout import ParentLayout
from hal_common.services_build import (
    RECORD_LIMIT,
    RECORD_NAME,
    BuildRecord,
    loaded_detail,
    waiting_detail,
)
from hal_common.shared_services import SERVICES_IMAGE
from parent_agent.adapters.engine import InnerEngine
from parent_agent.core.services import (
    ROLE,
    SPEC,
    TOP,
    Found,
    McpWait,
    RemoveService,
    ServicePlan,
    StartService,
    Waiting,
    actions,
)

log = logging.getLogger(__name__)


def ensure_token(path: Path) -> str:
    """The services' bearer token (the gates', ChromaDB's): made once, kept in the data
    volume, 0600, the parent's only. Made whole under a temporary name, then linked into
    place, so a spawn and the loop making it at once agree on one token."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(token)  # no newline: ChromaDB compares the file's lines with the header
        os.link(tmp, path)  # fails when another made it first: theirs is the token
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
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


def found(engine: InnerEngine) -> list[Found]:
    """The service containers the engine has, by label (HalError when it cannot say)."""
    listed = engine.containers(role=ROLE, what="services")
    return [Found(c.session, c.state, c.labels.get(SPEC, ""), c.id) for c in listed]


def reconcile(engine: InnerEngine, plan: ServicePlan) -> list[str]:
    """Make the engine's service containers match the plan; returns the errors."""
    errors: list[str] = list(plan.errors)
    try:
        have = found(engine)
    except HalError as e:
        return [*errors, e.message]
    try:
        prepare_data(plan)
    except OSError as e:
        errors.append(f"services: cannot prepare their data: {e}")
    for action in actions(plan, have):
        try:
            if isinstance(action, RemoveService):
                engine.remove(action.id, force=True, what=action.note)
                log.info("%s", action.note)
            elif isinstance(action, StartService):
                engine.start(action.id, what=f"service {action.name}")
            else:
                w = action.wanted
                try:
                    engine.run(what=f"service {w.name} did not start", **w.kwargs)
                    log.info("service %s started", w.name)
                except ImageMissing:
                    if w.image == SERVICES_IMAGE:  # building on the host: the state says so
                        log.info("service %s waits for its image %s", w.name, w.image)
                        continue
                    errors.append(
                        f"service {w.name} did not start: image {w.image} is missing "
                        "(claudy on the host loads it)"
                    )
        except HalError as e:
            errors.append(e.message)
    return errors


def restart(engine: InnerEngine, names: Iterable[str]) -> list[str]:
    """Restart the named services' containers; the errors, if any."""
    errors: list[str] = []
    for name in names:
        what = f"service {name}"
        try:
            listed = engine.containers(role=ROLE, session=name, what=what)
            if not listed:
                errors.append(f"{what}: not created (hal-agent health says why)")
            for c in listed:
                engine.restart(c.id, timeout=10, what=what)
        except HalError as e:
            errors.append(e.message)
    return errors


# --- reading ------------------------------------------------------------------------------


def port_open(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def inspect_all(engine: InnerEngine) -> dict[str, dict[str, Any]]:
    """Inspect data of the service containers, by service name, with their processes
    (HalError when the engine cannot say)."""
    out = {}
    for attrs in engine.inspect_all(role=ROLE, what="services"):
        if (attrs.get("State") or {}).get("Status") == "running":
            try:
                top = engine.top(attrs["Id"], ps_args="-eo pid,args")  # the engine wants a PID
                attrs[TOP] = [str(p[-1]) for p in top.get("Processes") or []]
            except HalError as e:  # it stopped in between: health goes by its state
                log.debug("services: no processes of %s: %s", attrs.get("Name"), e)
        session = ((attrs.get("Config") or {}).get("Labels") or {}).get(labels.SESSION, "")
        out[session] = attrs
    return out


def last_log_line(engine: InnerEngine, name: str) -> str:
    try:
        listed = engine.containers(role=ROLE, session=name)
        raw = engine.logs(listed[0].id, tail=5).decode(errors="replace") if listed else ""
    except HalError:
        return ""
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def wait_for_mcp(engine: InnerEngine, waits: Iterable[McpWait], timeout: float = 20.0) -> list[str]:
    """Wait (up to `timeout`) for the MCP services to answer, so that a Claude Code starting
    now connects to them; returns the ones still silent. Waited for: a service that runs,
    or is about to (the loop starts them in the background; its image is there). Not
    waited for: one that is exited or crashing, or whose image is missing."""
    deadline = time.monotonic() + timeout
    waiting = {w.name: w for w in waits}
    while waiting:
        try:  # one sparse list call: no inspect per container
            state = {c.session: c.state for c in engine.containers(role=ROLE)}
        except HalError:
            return sorted(waiting)
        for name, w in list(waiting.items()):
            now = state.get(name)
            if now is None:
                if not _have_image(engine, w.image):
                    del waiting[name]
            elif now not in ("running", "created"):
                del waiting[name]  # exited or restarting: broken, never waited for
            elif now == "running" and port_open(w.port, timeout=0.2):
                del waiting[name]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return sorted(waiting)


def waiting_for(engine: InnerEngine, layout: ParentLayout) -> Waiting:
    """For `states`: a missing image's (state, detail), from the host's record of the
    services image's background build (in the config directory claudy shares)."""

    def waiting(image: str) -> tuple[str, str] | None:
        rec = read_build_record(layout.config_dir / RECORD_NAME)
        if _have_image(engine, image):
            # loaded, and the loop is creating its containers (the load waits for that)
            return loaded_detail(rec, image)
        return waiting_detail(rec, image)

    return waiting


def read_build_record(path: Path) -> BuildRecord | None:
    """The host's record of the background build: a regular file, not followed through a
    link, read up to its size limit (no FIFO or device can hold the loop)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = fh.read(RECORD_LIMIT + 1)
    return BuildRecord.loads(data.decode(errors="replace"))


def _have_image(engine: InnerEngine, image: str) -> bool:
    try:
        return engine.has_image(image)
    except HalError:
        return False
