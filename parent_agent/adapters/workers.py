"""Worker containers in the inner engine: found by label, ensured idempotently."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import docker.errors
from docker.models.containers import Container

from hal_common import labels
from hal_common.errors import HalError, ImageMissing, NoSuchSession
from hal_io.engine import run_in, translated
from parent_agent.core.model import Worker, parse_time
from parent_agent.core.spec import WorkerSpec, create_kwargs

log = logging.getLogger(__name__)


def to_worker(c: Container) -> Worker:
    attrs = c.attrs
    lab = attrs.get("Config", {}).get("Labels") or {}
    state = attrs.get("State", {})
    host = attrs.get("HostConfig", {})
    return Worker(
        name=lab.get(labels.SESSION, c.name or ""),
        container=c.name or "",
        project=lab.get(labels.PROJECT, ""),
        image=lab.get(labels.IMAGE, ""),
        state=state.get("Status", "unknown"),
        started_at=parse_time(state.get("StartedAt")),
        created=parse_time(attrs.get("Created")),
        finished_at=parse_time(state.get("FinishedAt")),
        exit_code=int(state.get("ExitCode") or 0),
        memory=int(host.get("Memory") or 0),
        nano_cpus=int(host.get("NanoCpus") or 0),
        pids=int(host.get("PidsLimit") or 0),
        template=lab.get(labels.TEMPLATE, ""),
        pid=int(state.get("Pid") or 0),
    )


def list_workers(client: docker.DockerClient) -> list[Worker]:
    with translated("listing workers"):
        found = client.containers.list(all=True, filters=labels.managed_filter(labels.ROLE_WORKER))
        return sorted((to_worker(c) for c in found), key=lambda w: w.name)


class WorkerLister:
    """Lists workers with one engine call, inspecting only the containers whose summary (state
    and status text) changed since the last call: the loop and the dashboard list often, and
    inspecting fifty workers each time kept the engine busy."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[tuple[str, str], Worker]] = {}

    def __call__(self, client: docker.DockerClient) -> list[Worker]:
        out: list[Worker] = []
        with translated("listing workers"):
            summaries = client.api.containers(
                all=True, filters=labels.managed_filter(labels.ROLE_WORKER)
            )
            for s in summaries:
                cid, key = str(s["Id"]), (str(s.get("State", "")), str(s.get("Status", "")))
                hit = self.cache.get(cid)
                if hit is None or hit[0] != key:
                    try:
                        hit = (key, to_worker(client.containers.get(cid)))
                    except docker.errors.NotFound:
                        continue  # removed between the list and the inspect
                    self.cache[cid] = hit
                out.append(hit[1])
        for gone in set(self.cache) - {str(s["Id"]) for s in summaries}:
            del self.cache[gone]
        return sorted(out, key=lambda w: w.name)


def _first(client: docker.DockerClient, **narrow: str) -> Container | None:
    filters = labels.managed_filter(labels.ROLE_WORKER, **narrow)
    with translated("looking up a worker"):
        found = client.containers.list(all=True, filters=filters)
    return found[0] if found else None


def find_by_session(client: docker.DockerClient, session: str) -> Container | None:
    return _first(client, session=session)


def find_by_project(client: docker.DockerClient, project: str) -> Container | None:
    return _first(client, project=project)


def find_worker(client: docker.DockerClient, session: str) -> Container:
    with translated(f"looking up {session}"):
        found = client.containers.list(
            all=True, filters=labels.managed_filter(labels.ROLE_WORKER, session)
        )
    if not found:
        raise NoSuchSession(f"no worker for session {session}", hint="hal-agent ls lists them")
    return found[0]


def check_image(client: docker.DockerClient, image: str, expected_id: str | None) -> None:
    """ImageMissing when the inner engine lacks `image` (or has another id than expected)."""
    try:
        have = str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        raise ImageMissing(
            f"the inner engine has no image {image}",
            hint="run claudy from the host: it loads the worker image into the parent",
        ) from None
    if expected_id and have != expected_id:
        raise ImageMissing(f"the inner engine has an older {image} ({have[:19]})")


def ensure_worker(client: docker.DockerClient, spec: WorkerSpec, claude_home: str) -> Container:
    """The running worker for `spec`: started if stopped, created if missing. Idempotent.

    A stopped worker made from another spec (an older image or command, another user, an
    older hal-9000) is made afresh: there is no agent to lose, and starting the old one
    would bring back what the config no longer says. A running one is left alone.
    """
    with translated(f"starting worker {spec.session}"):
        try:
            c = client.containers.get(spec.container)
            if c.status != "running" and not same_spec(c, spec):
                log.info("recreating outdated worker %s", spec.container)
                c.remove(force=True)
                raise docker.errors.NotFound("outdated")
        except docker.errors.NotFound:
            try:
                c = client.containers.create(**create_kwargs(spec, claude_home))
                log.info("created worker %s", spec.container)
            except docker.errors.APIError as e:
                if e.status_code != 409:  # 409: a concurrent spawn created it first
                    raise
                c = _created_by_another(client, spec.container)
        if c.status != "running":
            c.start()
            c.reload()
            log.info("started worker %s", spec.container)
        return c


def same_spec(c: Container, spec: WorkerSpec) -> bool:
    """The container was made from `spec`'s template, for `spec`'s user."""
    config = c.attrs.get("Config", {})
    made = (config.get("Labels") or {}).get(labels.TEMPLATE)
    return (
        made == spec.labels.get(labels.TEMPLATE) and config.get("User") == f"{spec.uid}:{spec.gid}"
    )


def _created_by_another(client: docker.DockerClient, name: str, timeout: float = 30) -> Container:
    """The container a concurrent create is making: its name is reserved before it is listed."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            if time.monotonic() > deadline:
                raise
            pause.wait(0.02)


def stop_all(client: docker.DockerClient, timeout: int = 10) -> None:
    """Stop every running worker, each given `timeout` seconds."""
    with translated("stopping workers"):
        running = client.containers.list(filters=labels.managed_filter(labels.ROLE_WORKER))

    def stop(c: Container) -> None:
        with translated(f"stopping {c.name}"):
            c.stop(timeout=timeout)
        log.info("stopped worker %s", c.name)

    with ThreadPoolExecutor(max_workers=8) as pool:  # all at once, not 10 s each in turn
        for future in [pool.submit(stop, c) for c in running]:
            future.result()


def agent_pid(c: Container) -> int | None:
    """The agent's pid inside the worker, or None when it (or its worker) is not running."""
    try:
        code, out = run_in(c, ["hal-worker", "pid"], f"asking {c.name} for its agent")
    except HalError:  # the worker stopped (or is restarting): no agent to ask
        return None
    out = out.strip()
    return int(out) if code == 0 and out.isdigit() else None
