"""The parent's tmux server: session `hal`, the dashboard window, one window per worker."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import libtmux
from libtmux.exc import LibTmuxException

from hal_common.errors import HalError
from hal_common.protocol import WINDOW_OPTION
from parent_agent.core.keys import Binding
from parent_agent.core.tmux import (
    DASHBOARD,
    SESSION,
    config_path,
    dashboard_command,
    reap_views_hook,
    shell_command,
)

log = logging.getLogger(__name__)

WINDOW_MARK = WINDOW_OPTION  # window option: the worker session a window shows
KEYS_MARK = "@hal-keys"  # global option: the keys hal-agent bound (to unbind on rebind)
STATUS_MARK = "@hal-status"  # global option: worker counts for the status line
AGENT_MARK = "@hal_agent"  # window option: the state of the worker's agent (core/agent_state)

# A waiting agent's window shows a bold red `!` before its name in the window list (tmux's
# defaults otherwise). A format, not a literal: a window's name is ours, its state a word.
_WAITING = f"#{{?#{{==:#{{{AGENT_MARK}}},waiting}},#[fg=red bold]!#[default],}}"
WINDOW_FORMAT = f"#I:{_WAITING}#W#{{?window_flags,#{{window_flags}}, }}"
# Global options (every session of the group sees them), set whenever the session is made:
# the window list's mark, and bells: a bell in any window (Claude's, passed on by the
# worker's own tmux through `docker exec`) reaches the user's terminal as a bell.
SESSION_OPTIONS: tuple[tuple[str, ...], ...] = (
    ("set-option", "-g", "window-status-format", WINDOW_FORMAT),
    ("set-option", "-g", "window-status-current-format", WINDOW_FORMAT),
    ("set-option", "-g", "bell-action", "any"),
    ("set-option", "-g", "visual-bell", "off"),
    ("set-option", "-gw", "monitor-bell", "on"),
)

# What the loop must hear of at once, with no polling: a client attaching or leaving, a
# client's window changing (is anyone looking at the dashboard?), the session closing. Each
# hook signals a tmux wait-for channel that TmuxWatch waits on; tmux keeps a signal nobody
# waits for yet, so none is lost between two waits. Index 9 of each hook array: a user's
# own hooks (index 0) stay.
CHANGED = "hal-ui-changed"
HOOKS = (
    "client-attached",
    "client-detached",
    "client-session-changed",
    "session-window-changed",
    "session-closed",
    "window-linked",
    "window-unlinked",
)
SESSION_OPTIONS += tuple(
    ("set-hook", "-g", f"{hook}[9]", f"wait-for -S {CHANGED}") for hook in HOOKS
)


def server_for(sock: Path) -> libtmux.Server:
    return libtmux.Server(socket_path=str(sock), config_file=config_path())


class TmuxUI:
    """Idempotent `ensure_*` actions on one tmux server (given, never the user's default)."""

    def __init__(self, server: libtmux.Server) -> None:
        self.server = server
        self._marks: dict[str, str] = {}  # window id → the AGENT_MARK we set on it
        self._windows: dict[str, str] = {}  # worker window id → session (last listing)
        self._listed = False

    def alive(self) -> bool:
        return self.server.is_alive()

    def session(self) -> libtmux.Session | None:
        try:
            return self.server.sessions.get(session_name=SESSION, default=None)
        except LibTmuxException:
            return None

    def has_session(self) -> bool:
        """Whether session `hal` exists: one `has-session`, nothing to parse."""
        try:
            return not self.server.cmd("has-session", "-t", f"={SESSION}").stderr
        except LibTmuxException:
            return False

    def ensure_session(self) -> bool:
        """Session `hal` with the dashboard window; True when it had to be created."""
        if self.has_session() or self.session() is not None:
            return False
        self._marks.clear()  # a new server: none of our marks survived
        try:
            session = self.server.new_session(
                session_name=SESSION,
                window_name=DASHBOARD,
                window_command=dashboard_command(),
                x=200,
                y=50,
                attach=False,
            )
        except LibTmuxException as e:
            if self.session() is not None:  # another process created it first
                return False
            raise HalError(f"cannot start the tmux session: {e}") from None
        try:
            session.windows[0].split(shell=shell_command(), percentage=35, attach=True)
        except LibTmuxException as e:
            raise HalError(f"cannot split the dashboard window: {e}") from None
        self.apply_session_options()
        log.info("tmux session created", extra={"socket": self.server.socket_path})
        return True

    def apply_session_options(self) -> None:
        """The window list's marks and the bell passthrough (ensure_session sets them)."""
        for args in SESSION_OPTIONS:
            self._cmd(*args)
        sock = Path(self.server.socket_path or "")
        self._cmd("set-hook", "-g", "client-detached[8]", reap_views_hook(sock))

    def window_names(self) -> set[str]:
        """Names of the worker windows (marked with WINDOW_MARK; shells and others are not).
        One tmux call: without the session (or the server) tmux lists nothing."""
        try:
            out = self.server.cmd(
                "list-windows", "-t", f"={SESSION}", "-F", f"#{{window_id}} #{{{WINDOW_MARK}}}"
            ).stdout
        except LibTmuxException as e:  # the server died under us: no windows
            log.debug("listing windows: %s", e)
            return set()
        pairs = [line.split(" ", 1) for line in out]
        self._windows = {p[0]: p[1] for p in pairs if len(p) == 2 and p[1]}
        self._listed = True
        return set(self._windows.values())

    def viewed(self) -> bool:
        """Whether any client shows the dashboard window now (one tmux call; the loop asks
        when TmuxWatch says the clients changed)."""
        try:
            out = self.server.cmd("list-clients", "-F", "#{window_name}").stdout
        except LibTmuxException as e:
            log.debug("listing clients: %s", e)
            return False
        return DASHBOARD in out

    def known_windows(self) -> set[str]:
        """The worker windows as the last `window_names()` (or this object's own changes)
        left them: no tmux call."""
        return set(self._windows.values())

    def window_ids(self) -> dict[str, str]:
        """Window id → worker session, as `known_windows` (a remade window has a new id)."""
        return dict(self._windows)

    def set_marks(self, states: Mapping[str, str]) -> None:
        """Each worker window's AGENT_MARK = its agent's state word (`states`: session →
        state; a window of a session not in it has none). tmux is asked only for what
        changed: the windows are those of the last `window_names()` listing (the loop lists
        them again whenever TmuxWatch tells of a window opened or closed, by any process),
        and only a mark that differs from the one set is set."""
        wanted = dict(states)
        if not self._listed:
            self.window_names()
        for wid, session in self._windows.items():
            state = wanted.get(session, "")
            if self._marks.get(wid, "") == state:
                continue
            args = ["-w", AGENT_MARK, state] if state else ["-wu", AGENT_MARK]
            try:
                res = self.server.cmd("set-option", "-t", wid, *args)
            except LibTmuxException as e:
                log.debug("marking %s: %s", session, e)
                continue
            if res.stderr:  # the window closed since it was listed
                continue
            self._marks[wid] = state
        for wid in set(self._marks) - set(self._windows):
            del self._marks[wid]  # closed windows

    def ensure_window(self, name: str, command: str) -> bool:
        """A window named `name` running `command`; True when it had to be created."""
        self.ensure_session()
        session = self.session()
        if session is None:
            raise HalError("the tmux session vanished while adding a window")
        if name in self.window_names():
            return False
        try:
            window = session.new_window(window_name=name, window_shell=command, attach=False)
            window.cmd("set-option", "-w", WINDOW_MARK, name)
            # the window-linked hook fired before the mark was set: a loop that listed the
            # windows then did not see this one as a worker's; tell it again, now marked
            self.server.cmd("wait-for", "-S", CHANGED)
        except LibTmuxException as e:
            raise HalError(f"cannot open a window for {name}: {e}") from None
        if window.window_id:
            self._windows[window.window_id] = name  # set_marks marks it at its next call
        log.info("window created", extra={"window": name})
        return True

    def open_window(self, name: str, command: str, client: str | None) -> None:
        """A plain (non-worker) window, shown to `client` when given."""
        self.ensure_session()
        self._cmd("new-window", "-d", "-t", f"={SESSION}:", "-n", name, command)
        if client:
            self.focus(client, name)

    def _cmd(self, *args: str) -> list[str]:
        try:
            res = self.server.cmd(*args)
        except LibTmuxException as e:
            raise HalError(f"tmux {args[0]}: {e}") from None
        if res.stderr:
            raise HalError(f"tmux {args[0]}: {' '.join(res.stderr)}")
        return list(res.stdout)

    def focus(self, client: str, window: str) -> None:
        """Show `window` on `client` (in that client's own grouped session)."""
        (session,) = self._cmd("display-message", "-p", "-c", client, "#{client_session}")
        self._cmd("select-window", "-t", f"={session}:={window}")

    def message(self, client: str, text: str, hold: bool = False) -> None:
        """`text` on `client`'s status line (literally: `#` is not a format there); `hold`:
        until a key is pressed, not for tmux's `display-time`."""
        literal = text.replace("#", "##")
        self._cmd("display-message", "-c", client, *(["-d", "0"] if hold else []), literal)

    def confirm(self, client: str, prompt: str, command: str) -> None:
        self._cmd("confirm-before", "-t", client, "-p", prompt, command)

    def menu(self, client: str, title: str, items: list[tuple[str, str, str]]) -> None:
        """A menu on `client`: items are (label, key, tmux command)."""
        args = [a for item in items for a in item]
        self._cmd("display-menu", "-c", client, "-T", title, "-x", "C", "-y", "C", *args)

    def popup(self, client: str, command: str, title: str) -> None:
        self._cmd(
            "display-popup", "-c", client, "-E", "-w", "90%", "-h", "70%", "-T", title, command
        )

    def apply_keys(self, prefix: str, binds: list[Binding]) -> None:
        """Set the prefix and (re)bind our keys, unbinding the ones we bound before."""
        previous = self._global(KEYS_MARK).split()
        for key in previous:
            self.server.cmd("unbind-key", "-T", "prefix", key)
        self._cmd("set-option", "-g", "prefix", prefix)
        for b in binds:
            self._cmd("bind-key", "-T", "prefix", "-N", b.description, b.key, *b.command)
        self._cmd("set-option", "-g", KEYS_MARK, " ".join(b.key for b in binds))

    def set_status(self, text: str) -> None:
        self._cmd("set-option", "-g", STATUS_MARK, text)

    def _global(self, option: str) -> str:
        try:
            out = self.server.cmd("show-options", "-gqv", option).stdout
        except LibTmuxException:
            return ""
        return out[0] if out else ""

    def kill_window(self, name: str) -> None:
        if name in self.window_names():
            self.server.cmd("kill-window", "-t", f"={SESSION}:={name}")  # no error if gone
            self._windows = {w: s for w, s in self._windows.items() if s != name}

    def kill_server(self) -> None:
        if self.alive():
            self.server.kill()


class TmuxWatch:
    """A thread that blocks in `tmux wait-for CHANGED` and calls `changed()` each time a
    hook signals it, and when the server goes away (the wait ends with an error; then it
    tries again every `retry` seconds until a server answers). Nothing is polled while the
    server lives: an idle parent's tmux costs nothing here."""

    def __init__(self, sock: Path, changed: Callable[[], None], retry: float = 1.0) -> None:
        self.argv = ["tmux", "-S", str(sock), "wait-for", CHANGED]
        self.changed = changed
        self.retry = retry
        self.stopping = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="tmux-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                if self.stopping.is_set():
                    return
                try:
                    self.proc = subprocess.Popen(
                        self.argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                except OSError as e:  # no tmux binary: the loop's safety net checks
                    log.warning("cannot watch tmux: %s", e)
                    return
            code = self.proc.wait()
            if self.stopping.is_set():
                return
            self.changed()
            if code != 0:  # no server (yet, or any more): the loop remakes it
                self.stopping.wait(self.retry)

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
