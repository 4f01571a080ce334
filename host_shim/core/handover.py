"""The `docker exec -it` argv the user's terminal is handed to (pure).

docker-py has no interactive TTY exec, so claudy `execvp`s the docker CLI for these: the
attach of `claudy DIR` and the commands passed on to `hal-agent` (`claudy ls`, …). The fast
path's own argv is in `fastpath.attach_argv`.
"""

from __future__ import annotations

from hal_common.protocol import DETACH_KEYS

DEFAULT_TERM = "xterm-256color"


def attach_argv(docker_cli: str, parent: str, project: str, image_id: str, term: str) -> list[str]:
    """`hal-agent attach PROJECT` in the parent, on this terminal."""
    return [docker_cli, "exec", "-it", "--detach-keys", DETACH_KEYS, "-e", f"TERM={term}",
            parent, "hal-agent", "attach", project, "--image-id", image_id]  # fmt: skip


def on_engine(argv: list[str], engine_args: list[str]) -> list[str]:
    """`argv` (the docker CLI first) with the options that pick the engine (`-H URL`,
    `--context NAME`) right after the program: the parent may be on another engine."""
    return [argv[0], *engine_args, *argv[1:]]


def task_args(task: str | None, from_ref: str | None) -> list[str]:
    """`--task NAME [--from REF]` for hal-agent spawn (nothing without a task)."""
    if task is None:
        return []
    return ["--task", task, *(["--from", from_ref] if from_ref is not None else [])]


def spawn_argv(
    docker_cli: str,
    parent: str,
    project: str,
    image_id: str,
    term: str,
    task: str,
    from_ref: str | None,
) -> list[str]:
    """`hal-agent spawn PROJECT --task NAME` in the parent, on this terminal (it attaches)."""
    return [docker_cli, "exec", "-it", "--detach-keys", DETACH_KEYS, "-e", f"TERM={term}",
            parent, "hal-agent", "spawn", project, *task_args(task, from_ref),
            "--image-id", image_id]  # fmt: skip


def forward_argv(
    parent: str, args: list[str], tty: bool, term: str, no_color: bool = False
) -> list[str]:
    """`hal-agent ARGS` in the parent: with a terminal when this one is one, else stdin only;
    `no_color`: with NO_COLOR=1 (claudy's --no-color, or the host's NO_COLOR).

    argv[0] is `docker` (the caller execs the docker CLI it found).
    """
    env = ["-e", f"TERM={term}", *(["-e", "NO_COLOR=1"] if no_color else [])]
    return ["docker", "exec", *(["-it"] if tty else ["-i"]), "--detach-keys", DETACH_KEYS,
            *env, parent, "hal-agent", *args]  # fmt: skip
