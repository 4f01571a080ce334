"""tmux command lines: attach argv with exact targets, a worker window's command."""

from __future__ import annotations

from pathlib import Path

from hal_common.layout import ParentLayout
from parent_agent.core.tmux import attach_argv, worker_window_command


def test_attach_argv_groups_a_session_per_terminal_and_targets_exactly() -> None:
    argv = attach_argv(Path("/run/x.sock"), "proj-12345678", inside_tmux=False)
    assert argv[:3] == ["tmux", "-S", "/run/x.sock"]
    assert argv[3:6] == ["new-session", "-t", "=hal"]
    assert argv[-2:] == ["-t", ":=proj-12345678"]
    inside = attach_argv(Path("/s"), "w", inside_tmux=True)
    assert inside[3:] == ["select-window", "-t", ":=w"]


def test_window_command_execs_into_the_worker() -> None:
    cmd = worker_window_command("hal9000-w-x", ParentLayout().inner_docker_host)
    assert cmd.startswith("exec docker -H unix:///run/hal9000/docker.sock exec -it")
    assert cmd.endswith("hal9000-w-x /usr/local/bin/hal-worker attach")
