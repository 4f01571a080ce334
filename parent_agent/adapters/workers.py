"""Worker containers in the inner engine: found by label, ensured idempotently."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from hal_common import labels
from hal_common.config import WorkerConfig
from hal_common.errors import HalError, ImageMissing, NameConflict, NoSuchSession, UsageError
from hal_common.layout import RESUME_FILE, ParentLayout
from hal_common.project_config import limits_with
from parent_agent.adapters import identity_store, untrusted
from parent_agent.adapters.engine import InnerEngine
from parent_agent.core import agent_state
from parent_agent.core.model import Failure, Listed, Outcome, Worker, to_worker
from parent_agent.core.spec import (
    GROUP,
    PASSWD,
    WorkerSpec,
    create_kwargs,
    group_text,
    limits_body,
    passwd_text,
    same_spec,
)

log = logging.getLogger(__name__)


def list_workers(engine: InnerEngine) -> list[Worker]:
    found = engine.inspect_all(labels.ROLE_WORKER, what="listing workers")
    return sorted((to_worker(a) for a in found), key=lambda w: w.name)


class WorkerLister:
    """Lists workers with one engine call, inspecting only the containers whose summary (state
    and status text) changed since the last call: the loop and the dashboard list often, and
    inspecting fifty workers each time kept the engine busy.

    The state alone is the key: the status text ("Up 5 minutes") changes every minute for
    every worker, and a restart between two listings (same state) is an engine event, on
    which the loop `forget`s that worker."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[str, Worker]] = {}

    def forget(self, session: str) -> None:
        """Inspect `session`'s worker again at the next listing (an event said it changed)."""
        for cid in [c for c, (_, w) in self.cache.items() if w.name == session]:
            del self.cache[cid]

    def __call__(self, engine: InnerEngine) -> list[Worker]:
        out: list[Worker] = []
        summaries = engine.containers(labels.ROLE_WORKER, what="listing workers")
        for s in summaries:
            key = s.state
            hit = self.cache.get(s.id)
            if hit is None or hit[0] != key:
                attrs = engine.inspect(s.id, "listing workers")
                if attrs is None:
                    continue  # removed between the list and the inspect
                hit = (key, to_worker(attrs))
                self.cache[s.id] = hit
            out.append(hit[1])
        for gone in set(self.cache) - {s.id for s in summaries}:
            del self.cache[gone]
        return sorted(out, key=lambda w: w.name)


def _first(
    engine: InnerEngine, what: str, session: str | None = None, project: str | None = None
) -> Worker | None:
    found = engine.inspect_all(labels.ROLE_WORKER, session, project, what=what)
    return to_worker(found[0]) if found else None


def find_by_session(engine: InnerEngine, session: str) -> Worker | None:
    return _first(engine, "looking up a worker", session=session)


def find_by_project(engine: InnerEngine, project: str) -> Worker | None:
    return _first(engine, "looking up a worker", project=project)


def find_by_task(engine: InnerEngine, task: str) -> list[Worker]:
    """The workers of every task named `task` (one per repository that has one)."""
    listed = engine.containers(labels.ROLE_WORKER, what="looking up a task")
    found = (engine.inspect(c.id, "looking up a task") for c in listed
             if c.labels.get(labels.TASK) == task)  # fmt: skip
    return sorted((to_worker(a) for a in found if a is not None), key=lambda w: w.name)


def find_worker(engine: InnerEngine, session: str) -> Worker:
    found = _first(engine, f"looking up {session}", session=session)
    if found is None:
        raise NoSuchSession(f"no worker for session {session}", hint="hal-agent ls lists them")
    return found


def check_image(engine: InnerEngine, image: str, expected_id: str | None) -> str:
    """`image`'s id; ImageMissing when the inner engine lacks it (or has another id than
    expected)."""
    have = engine.image_id(image)
    if have is None:
        raise ImageMissing(
            f"the inner engine has no image {image}",
            hint="run claudy from the host: it loads the worker image into the parent",
        )
    if expected_id and have != expected_id:
        raise ImageMissing(f"the inner engine has an older {image} ({have[:19]})")
    return have


def check_fenced(layout: ParentLayout) -> None:
    """HalError while the loop says the workers' firewall is not in place: a worker is
    never created or started without its egress boundary (fail closed)."""
    if layout.unfenced_flag.exists():
        raise HalError(
            "the workers' firewall is not in place: no worker is started until it is",
            hint="hal-agent doctor says why; `claudy down && claudy` restarts the parent",
        )


def ensure_worker(
    engine: InnerEngine, spec: WorkerSpec, layout: ParentLayout, image_id: str | None = None
) -> dict[str, Any]:
    """The running worker for `spec` (its inspect data): started if stopped, created if
    missing. Idempotent.

    A stopped worker made from another spec (an older image or command, another user, an
    older hal-9000) is made afresh: there is no agent to lose, and starting the old one
    would bring back what the config no longer says. A running one is left alone.
    `image_id`: the image's id now (a stopped worker of an older build is outdated too).
    """
    what = f"starting worker {spec.session}"
    write_identity(spec.run_dir, spec.uid, spec.gid)
    write_setup(spec.run_dir, spec.setup)
    ensure_report_dir(layout, spec.session, spec.uid, spec.gid)
    if spec.run_dir:  # its gitconfig, and the GitHub token when granted (else removed)
        identity_store.write_worker(
            layout,
            spec.session,
            spec.grants.github_token,
            (spec.uid, spec.gid),
            safe=(spec.project,),  # git refuses another owner's repository: see gitconfig_text
        )
    attrs = engine.inspect(spec.container, what)
    older_build = attrs is not None and bool(image_id) and attrs.get("Image") != image_id
    if (
        attrs is not None
        and _state(attrs) != "running"
        and (older_build or not same_spec(attrs, spec))
    ):
        log.info("recreating outdated worker %s", spec.container)
        engine.remove(spec.container, force=True, what=what)
        attrs = None
    if attrs is None or _state(attrs) != "running":
        check_fenced(layout)
        # workers live on the workers' network: the loop makes it at engine start; one
        # inspect here, so that no spawn (or a test of this adapter) ever races it
        engine.ensure_network()
    if attrs is None:
        try:
            attrs = engine.create(what, **create_kwargs(spec, layout))
            log.info("created worker %s", spec.container)
        except NameConflict:  # a concurrent spawn created it first
            attrs = _created_by_another(engine, spec.container, what)
    if _state(attrs) != "running":
        checked = project_identity(spec.project)
        engine.start(spec.container, what)
        attrs = engine.inspect(spec.container, what)
        if attrs is None:
            raise NoSuchSession(f"{what}: {spec.container} was removed as it started")
        check_mounted(engine, attrs, spec.project, checked)
        log.info("started worker %s", spec.container)
    return attrs


def project_identity(project: str) -> tuple[int, int]:
    """The project directory's (device, inode), just before the engine mounts it: still the
    real directory the path policy passed (not a link put in its place since). UsageError
    otherwise, and nothing is started."""
    try:
        st = os.lstat(project)
    except OSError as e:
        raise UsageError(f"{project}: {e.strerror}", hint="create it or pick another") from None
    if not stat.S_ISDIR(st.st_mode) or os.path.realpath(project) != project:
        raise UsageError(
            f"{project} is no longer the directory that was checked (a link took its place)",
            hint="name the project by its real path",
        )
    return st.st_dev, st.st_ino


def check_mounted(
    engine: InnerEngine, attrs: Mapping[str, Any], project: str, checked: tuple[int, int]
) -> None:
    """The engine resolves a bind's source as it starts the container: the directory the
    worker got must be the one that was checked, or a swap in between (a link to ~/.ssh put
    in the project's place) reached the worker. Then it is stopped and HalError says so.
    Unverifiable (the agent already gone, no /proc access): logged, let be."""
    pid = int((attrs.get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        return
    try:
        st = os.stat(f"/proc/{pid}/root{project}")
    except OSError as e:
        log.debug("could not verify the project mount of %s: %s", attrs.get("Name"), e)
        return
    if (st.st_dev, st.st_ino) == checked:
        return
    name = str(attrs.get("Name") or "").lstrip("/")
    engine.stop(name, timeout=0, what=f"stopping {name}")
    raise HalError(
        f"{project} was replaced while its worker started: the worker got another directory "
        "and was stopped",
        hint="look at what changed the project's path; start it again when it is the project",
    )


def write_identity(run_dir: str, uid: int, gid: int) -> None:
    """The worker's /etc/passwd and /etc/group, in its parent-only directory (root's, 0755;
    the files 0644, mounted read-only). Rewritten before each start: the directory is in the
    parent's run directory, which a new parent does not have. A directory the engine made in
    a file's place (it does so for a missing bind source) is replaced."""
    if not run_dir:
        return
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    for name, text in ((PASSWD, passwd_text(uid, gid)), (GROUP, group_text(gid))):
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)  # empty: made by the engine for a missing bind source
        # a temp name of its own: two spawns of one session may write at once
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=run_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


SETUP_FILE = "setup"  # in the run directory: the project's one-time command (hal-worker runs it)


def write_setup(run_dir: str, setup: str) -> None:
    """The project's `setup` command for hal-worker to run once before the agent
    (`/etc/hal/run/setup`, read-only in the worker); removed when there is none."""
    if not run_dir:
        return
    path = os.path.join(run_dir, SETUP_FILE)
    if not setup:
        with suppress(FileNotFoundError):
            os.unlink(path)
        return
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{SETUP_FILE}.", dir=run_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(setup if setup.endswith("\n") else setup + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def restore_identities(engine: InnerEngine, layout: ParentLayout) -> int:
    """Write the passwd and group files of every worker from its inspect data (its user and
    session): a new parent (after `claudy down`) has none, and a stopped worker started by
    `hal-agent start` or its restart policy needs them. How many were written."""
    done = 0
    for attrs in engine.inspect_all(labels.ROLE_WORKER, what="listing workers"):
        config = attrs.get("Config") or {}
        session = (config.get("Labels") or {}).get(labels.SESSION, "")
        uid, _, gid = str(config.get("User") or "").partition(":")
        if session and uid.isdigit() and gid.isdigit():
            try:
                write_identity(str(layout.worker_run(session)), int(uid), int(gid))
                ensure_report_dir(layout, session, int(uid), int(gid))
                done += 1
            except OSError as e:
                log.warning("could not write the passwd of %s: %s", session, e)
    return done


def ensure_report_dir(layout: ParentLayout, session: str, uid: int, gid: int) -> None:
    """The worker's report directory (its hooks write there, the parent reads and empties
    it: `adapters/agent_reports`): made if missing, and at each start the worker user's,
    0700, whatever the worker did to it (a link in its place is refused: `Refused`).
    Before the worker is created too: the engine would make a missing bind source as
    root's, where the worker cannot write."""
    d = layout.worker_reports(session)
    d.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with untrusted.directory(d, create=True, owner=(uid, gid)) as fd:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.fchown(fd, uid, gid)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)


def write_resume(layout: ParentLayout, session: str, session_id: str | None) -> None:
    """What the worker resumes at its next start (`/etc/hal/run/resume`, read-only in it):
    Claude's session id, or nothing (None: a fresh conversation). Anything but a session
    id (a UUID; it came from the worker's reports) is written as nothing."""
    sid = agent_state.session_id(session_id)
    if session_id is not None and sid is None:
        log.warning("worker %s: not resuming %r (not a session id)", session, session_id)
    d = layout.worker_run(session)
    d.mkdir(mode=0o755, parents=True, exist_ok=True)
    with untrusted.directory(d) as fd:
        data = f"{sid}\n".encode() if sid else b""
        if untrusted.read(fd, RESUME_FILE, 4096) != data:
            untrusted.write(fd, RESUME_FILE, data, (os.getuid(), os.getgid()), 0o644)


def _state(attrs: dict[str, Any]) -> str:
    return str((attrs.get("State") or {}).get("Status", ""))


def _created_by_another(
    engine: InnerEngine, name: str, what: str, timeout: float = 30
) -> dict[str, Any]:
    """The container a concurrent create is making: its name is reserved before it is listed."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while (attrs := engine.inspect(name, what)) is None:
        if time.monotonic() > deadline:
            raise NoSuchSession(f"{what}: {name} is reserved but never appeared")
        pause.wait(0.02)
    return attrs


def stop_all(engine: InnerEngine, timeout: int = 10) -> None:
    """Stop every running worker, each given `timeout` seconds."""
    running = engine.containers(labels.ROLE_WORKER, stopped=False, what="stopping workers")

    def stop(c: Listed) -> None:
        engine.stop(c.id, timeout=timeout, what=f"stopping {c.name}")
        log.info("stopped worker %s", c.name)

    # all at once, not 10 s each in turn: the parent's stop timeout (60 s) covers one round
    with ThreadPoolExecutor(max_workers=max(1, min(64, len(running)))) as pool:
        for future in [pool.submit(stop, c) for c in running]:
            future.result()


def update_limits(engine: InnerEngine, cfg: WorkerConfig, session: str | None = None) -> Outcome:
    """`docker update` every running worker (or `session`'s) to `cfg`'s limits."""
    running = engine.containers(
        labels.ROLE_WORKER, session=session, stopped=False, what="listing workers"
    )
    done: list[str] = []
    failed: list[Failure] = []
    for c in running:
        # a worker of a project with its own limits keeps them (limits_with says how)
        body = limits_body(limits_with(cfg, c.labels.get(labels.PROJECT_CONFIG, "")))
        try:
            engine.update_limits(c.id, body, what=f"could not update {c.name}")
        except HalError as e:
            failed.append(Failure(c.name, e.message))
            continue
        log.info("updated limits of %s", c.name, extra=body)
        done.append(c.name)
    return Outcome(tuple(done), tuple(failed))


def agent_pid(engine: InnerEngine, container: str) -> int | None:
    """The agent's pid inside the worker, or None when it (or its worker) is not running."""
    try:
        res = engine.exec(container, ["hal-worker", "pid"], f"asking {container} for its agent")
    except HalError:  # the worker stopped (or is restarting): no agent to ask
        return None
    out = res.output.strip()
    return int(out) if res.exit_code == 0 and out.isdigit() else None
