"""tmux command lines: attach argv with exact targets, a worker window's command."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hal_common.layout import ParentLayout
from hal_common.protocol import DETACH_KEYS
from parent_agent.core.tmux import attach_argv, worker_window_command


def test_attach_argv_groups_a_session_per_terminal_and_targets_exactly() -> None:
    argv = attach_argv(Path("/run/x.sock"), "proj-12345678", inside_tmux=False)
    assert argv[:3] == ["tmux", "-S", "/run/x.sock"]
    assert argv[3:6] == ["new-session", "-t", "=hal"]
    assert argv[-2:] == ["-t", ":=proj-12345678"]
    inside = attach_argv(Path("/s"), "w", inside_tmux=True)
    assert inside[3:] == ["select-window", "-t", ":=w"]


def test_window_command_execs_into_the_worker_over_the_engines_api() -> None:
    """On the parent's unix socket a window runs exec_tty.py in a Python with no site
    packages (≈ 9 MB), with the same detach keys and TERM as the docker CLI took."""
    cmd = shlex.split(worker_window_command("hal9000-w-x", ParentLayout().inner_docker_host))
    assert cmd[:4] == ["exec", sys.executable, "-I", "-S"]
    script = Path(cmd[4])
    assert script.name == "exec_tty.py" and script.is_file()
    assert cmd[5:8] == ["/run/hal9000/docker.sock", "hal9000-w-x", DETACH_KEYS]
    assert cmd[8:] == ["TERM=tmux-256color", "--", "/usr/local/bin/hal-worker", "attach"]


def test_window_command_on_another_engine_is_the_docker_cli() -> None:
    cmd = shlex.split(worker_window_command("hal9000-w-x", "tcp://10.0.0.1:2376"))
    assert cmd[:6] == ["exec", "docker", "-H", "tcp://10.0.0.1:2376", "exec", "-it"]
    assert cmd[-5:] == ["-e", "TERM=tmux-256color", "hal9000-w-x", "/usr/local/bin/hal-worker",
                        "attach"]  # fmt: skip
