"""The parent's own dockerd: a supervised child listening on a unix socket only."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from pathlib import Path

from hal_common.errors import EngineUnavailable, HalError
from hal_common.layout import INNER_API_VERSION, ParentLayout
from parent_agent.adapters import logfiles
from parent_agent.adapters.engine import InnerEngine

log = logging.getLogger(__name__)


def dockerd_argv(layout: ParentLayout) -> list[str]:
    return [
        "dockerd",
        "--host", f"unix://{layout.inner_docker_sock}",
        "--pidfile", str(layout.dockerd_pidfile),
        "--data-root", str(layout.inner_data_root),
        "--exec-root", str(layout.dockerd_exec_root),
        "--storage-driver", "overlay2",
    ]  # fmt: skip


def _is_dockerd(pid: int) -> bool:
    """Whether `pid` is a live dockerd (not a zombie): its command name says so."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the last ")" ends it
    comm, _, rest = stat.partition(" (")[2].rpartition(") ")
    return comm == "dockerd" and not rest.startswith(("Z", "X"))


def remove_stale_pidfile(pidfile: Path) -> None:
    """Remove a pid file that no running dockerd owns: dockerd refuses to start over one.

    A crash leaves one, and so does a restart of the parent when the run directory survives:
    the pids of the new boot start again from 1, so the number in the file may well be a
    live process now (tini, hal-agent itself, tmux). Only a dockerd other than us counts as
    its owner; then dockerd itself says that one runs."""
    try:
        text = pidfile.read_text().strip()
    except FileNotFoundError:
        return
    except OSError as e:
        log.warning("unreadable dockerd pid file %s (%s): removing it", pidfile, e)
        pidfile.unlink(missing_ok=True)
        return
    pid = int(text) if text.isdigit() else 0
    if pid > 0 and pid != os.getpid() and _is_dockerd(pid):
        return
    log.info("removing stale dockerd pid file", extra={"pid": text[:20]})
    pidfile.unlink(missing_ok=True)


def log_tail(path: Path, lines: int = 20) -> str:
    text = logfiles.tail_lines(path, lines)[0].decode(errors="replace").rstrip("\n")
    return text or "(no log)"


def wait_ping(
    engine: InnerEngine,
    deadline: float,
    proc: subprocess.Popen[bytes],
    log_file: Path,
    drained: threading.Thread | None = None,
) -> None:
    """Wait until the engine answers, the process dies, or the deadline passes. `drained`:
    the thread copying its output to `log_file`, waited for before the log's tail is read."""
    stop = threading.Event()
    while True:
        if proc.poll() is not None:
            if drained is not None:
                drained.join(timeout=5)
            raise EngineUnavailable(
                f"dockerd exited with code {proc.returncode}:\n{log_tail(log_file)}",
                hint="claudy doctor checks the privileges the inner engine needs",
            )
        if engine.ping():
            return
        if time.monotonic() > deadline:
            raise EngineUnavailable(
                f"dockerd did not answer in time:\n{log_tail(log_file)}",
                hint="`claudy logs --dockerd` (hal-agent logs --dockerd) has the rest",
            )
        stop.wait(0.05)


class Dockerd:
    """Start, watch and stop one dockerd child."""

    def __init__(self, layout: ParentLayout, log_max_bytes: int = logfiles.MAX_BYTES) -> None:
        self.layout = layout
        self.log_max_bytes = log_max_bytes  # dockerd.log rotates past this
        self.proc: subprocess.Popen[bytes] | None = None
        self.pump: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> InnerEngine:
        layout = self.layout
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        layout.log_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_pidfile(layout.dockerd_pidfile)
        layout.inner_docker_sock.unlink(missing_ok=True)
        # its output through a pipe into a file rotated by size, in the data volume
        self.proc = subprocess.Popen(
            dockerd_argv(layout),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if self.proc.stdout is None:  # not with stdout=PIPE: for the type checker
            raise HalError("dockerd was started without its output pipe")
        out = logfiles.RotatingFile(layout.dockerd_log, self.log_max_bytes)
        self.pump = logfiles.pump(self.proc.stdout, out, name="dockerd-log")
        # A fixed API version: docker-py would otherwise ask the not-yet-listening daemon.
        engine = InnerEngine.at(f"unix://{layout.inner_docker_sock}", version=INNER_API_VERSION)
        wait_ping(engine, time.monotonic() + timeout, self.proc, layout.dockerd_log, self.pump)
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
        if self.pump is not None:
            self.pump.join(timeout=5)  # its last lines are in the log
        log.info("dockerd stopped")
