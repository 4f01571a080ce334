"""Pure: the shell commands and argv lists the parent's tmux runs (no libtmux needed)."""

from __future__ import annotations

import os
import shlex
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
    """The shell command a worker's window runs: attach to the agent's tmux in the worker."""
    argv = ["docker", "-H", docker_host, "exec", "-it", "--detach-keys", DETACH_KEYS,
            "-e", "TERM=tmux-256color", container, WORKER_BIN, "attach"]  # fmt: skip
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


def attach_argv(sock: Path, window: str | None, inside_tmux: bool) -> list[str]:
    """argv that shows `window` to the user: a new grouped session (one view per terminal).

    Each terminal gets its own session in the group of `hal`, so two terminals can look at
    two workers; `destroy-unattached` removes it when the terminal goes.
    """
    base = ["tmux", "-S", str(sock)]
    if inside_tmux:  # typed in a pane of this server: change that terminal's window
        return [*base, "select-window", "-t", f":={window or DASHBOARD}"]
    argv = [*base, "new-session", "-t", f"={SESSION}", "-s", f"{SESSION}-{os.getpid()}",
            ";", "set-option", "destroy-unattached", "on"]  # fmt: skip
    if window:
        argv += [";", "select-window", "-t", f":={window}"]
    return argv
