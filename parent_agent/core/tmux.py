"""Pure: the shell commands and argv lists the parent's tmux runs (no libtmux needed)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from hal_common.layout import WORKER_BIN
from hal_common.protocol import DASHBOARD_WINDOW, TMUX_SESSION
from hal_common.protocol import DETACH_KEYS as DETACH_KEYS  # re-exported: the commands use it

SESSION = TMUX_SESSION
DASHBOARD = DASHBOARD_WINDOW


def config_path() -> str:
    return str(resources.files("parent_agent").joinpath("tmux.conf"))


def worker_window_command(container: str, docker_host: str) -> str:
    """The shell command a worker's window runs: attach to the agent's tmux in the worker.

    On a unix socket (the parent's own engine), hal_io/exec_tty.py makes the exec over the
    engine's API from a Python with no site packages: ≈ 9 MB a window where the docker CLI
    held ≈ 38 MB. Elsewhere, the docker CLI."""
    attach = [container, WORKER_BIN, "attach"]
    if docker_host.startswith("unix://"):
        script = str(resources.files("hal_io").joinpath("exec_tty.py"))
        sock = docker_host.removeprefix("unix://")
        argv = [sys.executable, "-I", "-S", script, sock, container, DETACH_KEYS,
                "TERM=tmux-256color", "--", WORKER_BIN, "attach"]  # fmt: skip
    else:
        argv = ["docker", "-H", docker_host, "exec", "-it", "--detach-keys", DETACH_KEYS,
                "-e", "TERM=tmux-256color", *attach]  # fmt: skip
    return "exec " + shlex.join(argv)


def dashboard_command() -> str:
    """The dashboard pane's process: it only holds the terminal the loop draws into
    (adapters/dashboard_pane.py) and swallows what is typed there, unechoed, so that a
    stray key neither shows nor scrolls the frame. (`hal-agent dashboard` draws the same
    in any terminal.)"""
    return "stty -echo -icanon -isig 2>/dev/null; exec cat >/dev/null"


def shell_command() -> str:
    rc = str(resources.files("parent_agent").joinpath("shell.rc"))
    return f"exec bash --rcfile {shlex.quote(rc)} -i"


# What a spawn on a terminal says before it attaches to a project its agent cannot write
HOLD_PROMPT = (
    "hal-agent: the agent cannot write this project (above); press Enter to open it anyway"
)


def inside_tmux(env: Mapping[str, str], sock: Path) -> bool:
    """True when a process with `env` runs in a pane of the tmux server at `sock`."""
    return env.get("TMUX", "").split(",", 1)[0] == str(sock)


def attach_argv(sock: Path, window: str | None, inside_tmux: bool) -> list[str]:
    """argv that shows `window` to the user: a new grouped session (one view per terminal).

    Each terminal gets its own session in the group of `hal`, so two terminals can look at
    two workers; the server's `client-detached` hook (`reap_views_hook`) removes it when the
    terminal goes. (Not `destroy-unattached`: tmux 3.3a's server crashes when a grouped
    session with it loses its client while another client asks something, tmux#5394/#5497.)
    """
    base = ["tmux", "-S", str(sock)]
    if inside_tmux:  # typed in a pane of this server: change that terminal's window
        return [*base, "select-window", "-t", f":={window or DASHBOARD}"]
    argv = [*base, "new-session", "-t", f"={SESSION}", "-s", f"{VIEW_PREFIX}{os.getpid()}"]
    if window:
        argv += [";", "select-window", "-t", f":={window}"]
    return argv


VIEW_PREFIX = f"{SESSION}-"  # a terminal's own view of `hal`: hal-<pid>, hal-h<pid>


def reap_views_hook(sock: Path) -> str:
    """The tmux command a `client-detached` hook runs: a separate client (`run-shell -b`, after
    the detach is done) kills every view of `hal` that no client shows any more. tmux's
    `##` is a literal `#` (run-shell expands formats); the script has no single quote."""
    tmux = f"tmux -S {shlex.quote(str(sock))}"
    if "'" in tmux or "#" in tmux:  # the socket is ours (/run/hal9000, a test's tmp dir)
        raise ValueError(f"tmux socket path not usable in a hook: {sock}")
    script = (
        f'{tmux} list-sessions -F "##{{session_attached}} ##{{session_name}}" '
        f'| while read -r n s; do case "$n.$s" in 0.{VIEW_PREFIX}*) '
        f'{tmux} kill-session -t "=$s" ;; esac; done'
    )
    return f"run-shell -b '{script}'"
