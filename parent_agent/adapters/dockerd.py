"""The parent's own dockerd: a supervised child listening on a unix socket only."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from pathlib import Path

from hal_common import paths
from hal_common.errors import EngineUnavailable, HalError
from parent_agent.adapters.engine import InnerEngine

log = logging.getLogger(__name__)

PIDFILE = paths.RUN_DIR / "dockerd.pid"
LOGFILE = paths.LOG_DIR / "dockerd.log"


def dockerd_argv(sock: Path = paths.INNER_DOCKER_SOCK, pidfile: Path = PIDFILE) -> list[str]:
    return [
        "dockerd",
        "--host", f"unix://{sock}",
        "--pidfile", str(pidfile),
        "--data-root", str(paths.INNER_DATA_ROOT),
        "--exec-root", str(paths.RUN_DIR / "docker-exec"),
        "--storage-driver", "overlay2",
    ]  # fmt: skip


def remove_stale_pidfile(pidfile: Path) -> None:
    """Remove a pid file whose process is gone (a crash leaves one and dockerd then refuses)."""
    try:
        pid = int(pidfile.read_text().strip() or "0")
    except (FileNotFoundError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        log.info("removing stale dockerd pid file", extra={"pid": pid})
        pidfile.unlink(missing_ok=True)
    except PermissionError:
        pass  # alive, owned by someone else: dockerd itself will say so


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_ping(engine: InnerEngine, deadline: float, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the engine answers, the process dies, or the deadline passes."""
    stop = threading.Event()
    while True:
        if proc.poll() is not None:
            raise EngineUnavailable(
                f"dockerd exited with code {proc.returncode}:\n{log_tail(LOGFILE)}",
                hint="claudy doctor checks the privileges the inner engine needs",
            )
        if engine.ping():
            return
        if time.monotonic() > deadline:
            raise EngineUnavailable(
                f"dockerd did not answer in time:\n{log_tail(LOGFILE)}",
                hint="see /var/log/hal9000/dockerd.log in the parent",
            )
        stop.wait(0.05)


class Dockerd:
    """Start, watch and stop one dockerd child."""

    def __init__(self, sock: Path = paths.INNER_DOCKER_SOCK) -> None:
        self.sock = sock
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> InnerEngine:
        paths.RUN_DIR.mkdir(parents=True, exist_ok=True)
        paths.LOG_DIR.mkdir(parents=True, exist_ok=True)
        remove_stale_pidfile(PIDFILE)
        self.sock.unlink(missing_ok=True)
        with LOGFILE.open("ab") as out:
            self.proc = subprocess.Popen(
                dockerd_argv(self.sock), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        # A fixed API version: docker-py would otherwise ask the not-yet-listening daemon.
        engine = InnerEngine.at(f"unix://{self.sock}", version=paths.INNER_API_VERSION)
        wait_ping(engine, time.monotonic() + timeout, self.proc)
        driver = engine.info().get("Driver", "?")
        if driver == "vfs":
            log.warning(
                "INNER ENGINE USES vfs: every worker copies its whole image; mount a volume on "
                "/var/lib/docker (claudy does) and use a host filesystem that supports overlay2"
            )
        elif driver != "overlay2":
            log.warning("inner engine storage driver is %s, overlay2 expected", driver)
        log.info("dockerd up", extra={"driver": driver, "pid": self.proc.pid})
        return engine

    def wait(self) -> int:
        if self.proc is None:
            raise HalError("dockerd was never started")
        return self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("dockerd did not stop in %ss; killing it", timeout)
            self.proc.kill()
            self.proc.wait()
        log.info("dockerd stopped")
