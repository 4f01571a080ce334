"""The services image's background build on the host: where its files are, its lock, the
detached process, and its record (see hal_common/services_build.py).

The process is started in a session of its own (it outlives claudy's exec into the
terminal hand-over and a closed terminal), logs to `$XDG_STATE_HOME/hal9000/services-build.log`
and holds an flock on `services-build.lock` while it runs: a second claudy sees the lock
and does not build twice (two that race both start one; the one without the lock leaves).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hal_common.layout import HostLayout
from hal_common.services_build import RECORD_NAME, BuildRecord

LOG_NAME = "services-build.log"
LOCK_NAME = "services-build.lock"
CHILD = "host_shim.commands.services_build"  # run with `python -m`


@dataclass(frozen=True)
class Paths:
    state_dir: Path  # log and lock
    record: Path  # in the config directory, which the parent sees

    @classmethod
    def of(cls, layout: HostLayout, env: Mapping[str, str]) -> Paths:
        """The paths for the engine `env` names (DOCKER_HOST, DOCKER_CONTEXT): a build per
        engine, so that a build for one engine never stops another's. A local socket's keep
        the plain names (its parent reads the record in the config directory it mounts; a
        parent on another machine does not see this directory)."""
        state = Path(env.get("XDG_STATE_HOME") or str(layout.home / ".local" / "state"))
        key = _engine_key(env)
        if not key:
            return cls(state / "hal9000", layout.config_dir / RECORD_NAME)
        record = layout.config_dir / "engines" / key / RECORD_NAME
        return cls(state / "hal9000" / "engines" / key, record)

    @property
    def log(self) -> Path:
        return self.state_dir / LOG_NAME

    @property
    def lock(self) -> Path:
        return self.state_dir / LOCK_NAME


def _engine_key(env: Mapping[str, str]) -> str:
    """ "" for a local socket (or the default); else a short name of the engine."""
    host = env.get("DOCKER_HOST", "")
    context = env.get("DOCKER_CONTEXT", "")
    if host.startswith("unix://") or not (host or context not in ("", "default")):
        return ""
    name = host or f"context:{context}"
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def read_record(paths: Paths) -> BuildRecord | None:
    try:
        return BuildRecord.loads(paths.record.read_text(errors="replace"))
    except OSError:
        return None


def write_record(paths: Paths, rec: BuildRecord) -> None:
    """Atomically (a reader never sees half a record)."""
    paths.record.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.record.with_name(f".{RECORD_NAME}.{os.getpid()}")
    tmp.write_text(rec.dumps())
    tmp.replace(paths.record)


@contextlib.contextmanager
def locked(paths: Paths) -> Iterator[bool]:
    """Hold the build's lock for the block, if it is free: yields whether it is held."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def running(paths: Paths) -> bool:
    """A background build holds the lock now."""
    if not paths.lock.exists():
        return False
    with locked(paths) as free:
        return not free


def start(paths: Paths, env: Mapping[str, str]) -> None:
    """Start the background build, detached: its own session, no terminal, output to the log."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.log, "ab") as log, open(os.devnull, "rb") as null:
        subprocess.Popen(  # our own module, by this interpreter
            [sys.executable, "-m", CHILD],
            stdin=null,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
