"""`[notify]`: run the user's command when a worker enters a chosen state.

The command is an argv run without a shell, in the background: `notify` never blocks the
loop that calls it. What the worker said (`reason`) is the worker's text, so it reaches the
command only as data: in environment variables and in one JSON line on stdin, never in the
argv. Each run gets `TIMEOUT` seconds, then is killed with its process group; at most
`MAX_RUNNING` run at once, and a notification beyond that is dropped (with `on_error`).
The same worker entering the same state again within `debounce` seconds notifies once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

from hal_common.config_schema import NotifyConfig
from parent_agent.core.agent_state import EXITED, AgentState

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds a command may run before it is killed
MAX_RUNNING = 4  # commands running at once; more are dropped
PASSED = ("PATH", "HOME", "LANG")  # the parent's variables a command gets
_STDERR_KEPT = 300  # characters of a failing command's stderr shown in its error


def command_env(
    session: str, project: str, state: AgentState, parent: Mapping[str, str]
) -> dict[str, str]:
    """The command's whole environment: what happened, plus the parent's PATH, HOME, LANG."""
    env = {k: parent[k] for k in PASSED if k in parent}
    env.update(
        HAL_SESSION=session,
        HAL_PROJECT=project,
        HAL_STATE=state.state,
        HAL_REASON=state.reason,
    )
    if state.state == EXITED and state.exit_code is not None:
        env["HAL_EXIT_CODE"] = str(state.exit_code)
    # a variable holds no NUL (the reason is cleaned, names are ours): refuse rather than fail
    return {k: v.replace("\0", " ") for k, v in env.items()}


def command_input(session: str, project: str, state: AgentState) -> bytes:
    """The JSON line on the command's stdin."""
    doc = {
        "session": session,
        "project": project,
        "state": state.state,
        "reason": state.reason,
        "since": state.since.timestamp(),
        "exit_code": state.exit_code,
        "oom": state.oom,
    }
    return (json.dumps(doc, ensure_ascii=False) + "\n").encode()


class Notifier:
    """Runs `[notify] command` for chosen state changes; `configure` applies a new config."""

    def __init__(
        self,
        cfg: NotifyConfig,
        on_error: Callable[[str], None],
        *,
        timeout: float = TIMEOUT,
        max_running: int = MAX_RUNNING,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._cfg = cfg
        self._on_error = on_error
        self._timeout = timeout
        self._max_running = max_running
        self._environ = dict(os.environ if environ is None else environ)
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}  # (session, state) → monotonic time
        self._threads: set[threading.Thread] = set()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._closed = False

    def configure(self, cfg: NotifyConfig) -> None:
        """A new `[notify]` (live): the next notification uses it."""
        with self._lock:
            self._cfg = cfg

    def notify(self, session: str, project: str, state: AgentState) -> bool:
        """Run the command for `session` entering `state`, in the background. False (and
        nothing runs) when the state is not in `on`, there is no command, the same session
        and state notified less than `debounce` seconds ago, too many commands run, or the
        notifier is closed."""
        now = time.monotonic()
        with self._lock:
            cfg = self._cfg
            if self._closed or not cfg.command or state.state not in cfg.on:
                return False
            key = (session, state.state)
            last = self._last.get(key)
            if last is not None and now - last < cfg.debounce:
                return False
            self._threads = {t for t in self._threads if t.is_alive()}
            if len(self._threads) >= self._max_running:
                dropped = True
            else:
                dropped = False
                self._last[key] = now
                thread = threading.Thread(
                    target=self._run,
                    args=(cfg.command, session, project, state),
                    name=f"notify-{session}",
                    daemon=True,
                )
                self._threads.add(thread)
                thread.start()
        if dropped:
            self._report(
                f"notify: {self._max_running} notify commands are still running; the "
                f"notification for {session} ({state.label()}) was dropped"
            )
            return False
        return True

    def forget(self, session: str) -> None:
        """Drop a session's debounce record (a removed worker)."""
        with self._lock:
            for key in [k for k in self._last if k[0] == session]:
                del self._last[key]

    def close(self, timeout: float = 2.0) -> None:
        """No new runs; kill the running commands and wait for their threads."""
        with self._lock:
            self._closed = True
            procs = list(self._procs)
            threads = list(self._threads)
        for proc in procs:
            _kill_group(proc)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the background side ---------------------------------------------------------------

    def _report(self, message: str) -> None:
        log.warning("%s", message)
        try:
            self._on_error(message)
        except Exception:  # the caller's sink must not kill a notifier thread
            log.exception("notify: on_error failed")

    def _run(self, argv: tuple[str, ...], session: str, project: str, state: AgentState) -> None:
        what = f"notify command {argv[0]!r} for {session} ({state.label()})"
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=command_env(session, project, state, self._environ),
                cwd="/",
                start_new_session=True,  # its own process group: a timeout kills it all
                close_fds=True,
            )
        except OSError as e:
            reason = "not found" if isinstance(e, FileNotFoundError) else e.strerror or str(e)
            self._report(f"{what} could not run: {reason} (check [notify] command)")
            return
        with self._lock:
            self._procs.add(proc)
        try:
            try:
                _, err = proc.communicate(command_input(session, project, state), self._timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                try:  # a child that left the group may still hold stderr: do not wait on it
                    proc.communicate(timeout=1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                self._report(f"{what} ran longer than {self._timeout:g} s and was killed")
                return
            if proc.returncode != 0 and not self._closed:
                tail = " ".join(err.decode(errors="replace").split())[-_STDERR_KEPT:]
                self._report(
                    f"{what} failed with exit code {proc.returncode}"
                    + (f": {tail}" if tail else "")
                )
        except OSError as e:  # e.g. the pipe broke under a command that exits at once
            self._report(f"{what} failed: {e}")
        finally:
            with self._lock:
                self._procs.discard(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
