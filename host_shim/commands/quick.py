"""`claudy`'s entry point: `claudy [DIR]` reattaches with built-in modules alone.

The full command line (click, rich, docker-py, the config's TOML) costs a few hundred
milliseconds to import; reattaching to a running worker needs none of it. So for `claudy` and
`claudy DIR` on a terminal (also with `--engine ssh://…` first) this entry tries the quick
path first:

1. the hint the full path left (core/hint.py, adapters/fast_hint.py), while the
   environment, the stamps of the files and the resolved paths it was derived from hold;
2. DIR's real path, which the full path has accepted under that same policy (the hint keeps
   its decisions and sessions), still a directory;
3. the host engine asked over its unix socket (three inspects): the same parent runs the same
   image, still its tag's (not older code), and the worker image is the one it holds;
4. one `docker exec -it PARENT sh -c ATTACH_SCRIPT` (core/fastpath.py), which checks in the
   parent (ready; DIR's window there, its pane alive) and becomes the tmux client in that
   same exec, or exits FALLBACK with the terminal as it was. The exec goes over the
   engine's API from this process (hal_io/exec_tty.py `exec_attached`), not through
   the docker CLI, whose own start-up would cost more than all of the above.

On an engine over ssh (`--engine ssh://…`, DOCKER_HOST) the three inspects are one
`docker -H URL inspect` and the exec is `docker -H URL exec -it …`: two ssh connections,
each made by the docker CLI as the user's own `docker -H` would make it.

Any other command line, any doubt, any failure: the full click command (commands/cli.py),
exactly as before; it repairs what the quick path found missing and writes a fresh hint.
lint-imports holds the imports (no click, rich, docker, tomlkit, hal_io, config).
"""

from __future__ import annotations

import os
import sys

from hal_io.exec_tty import NoExec, exec_attached
from host_shim.adapters.fast_hint import load_hint
from host_shim.adapters.quick_exec import engine_get, find_program, run_attached, run_captured
from host_shim.core.hint import (
    FALLBACK,
    completing,
    engine_socket,
    engine_words,
    exec_parts,
    inspect_argv,
    inspected_lines,
    pinned,
    quick_candidate,
    remote_engine,
    same_engine,
    same_remote,
    still_holds,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_TERM = "xterm-256color"  # core.handover's (a test holds them equal)


def quick_argv(args: list[str], env: Mapping[str, str], pid: int) -> list[str] | None:
    """The one exec that reattaches `claudy ARGS` (as the docker CLI's argv), or None:
    take the full path."""
    words = engine_words(args)
    if words is None or not quick_candidate(words[1]) or completing(env) or not os.isatty(0):
        return None
    given, args = words
    env = pinned(env, given)  # `--engine URL`: as the full path's environment (the hint's)
    hint = load_hint(env)
    cli = find_program(env, "docker")
    if hint is None or cli is None:
        return None
    real = os.path.realpath(args[0] if args else ".")
    session = hint.projects.get(real)
    if session is None or not os.path.isdir(real):
        return None  # a project the full path has not accepted under this policy (yet)
    remote = remote_engine(env)
    if remote is not None:  # over ssh: one docker CLI call asks, a second one attaches
        if not same_remote(hint, remote):
            return None
        found = run_captured([cli, "-H", remote, *inspect_argv(hint)])
        inspects = inspected_lines(found) if found is not None else None
        if inspects is None or not still_holds(hint, *inspects):
            return None
        on = ["-H", remote]
    else:
        sock = engine_socket(env)
        if sock is None or not same_engine(hint, sock):
            return None
        parent = engine_get(sock, f"/containers/{hint.parent}/json")
        parent_tag = engine_get(sock, f"/images/{hint.parent_image}/json")
        worker_tag = engine_get(sock, f"/images/{hint.worker_image}/json")
        if not still_holds(hint, parent, parent_tag, worker_tag):
            return None
        # `--engine unix://…`: the docker CLI told which engine (`attach` looks at the
        # process's own DOCKER_HOST for its API exec, which is another engine's)
        on = [] if given is None else ["-H", f"unix://{sock}"]
    return [cli, *on, *hint.argv, env.get("TERM", DEFAULT_TERM), session, f"hal-h{pid}"]


def full() -> None:
    """The full command line, as it always was."""
    from host_shim.commands.cli import main as full_main

    full_main(prog_name="claudy", complete_var="_CLAUDY_COMPLETE")  # as `python -m host_shim`


def attach(argv: list[str], env: Mapping[str, str]) -> int | None:
    """Run the quick exec: over the engine's API where it can (a local socket), else the
    docker CLI (`-H ssh://…`: exec_parts does not take it)."""
    parts = exec_parts(argv[1:])
    sock = engine_socket(env)
    if parts is not None and sock is not None:
        keys, container, cmd = parts
        try:
            return exec_attached(sock, container, cmd, keys)
        except NoExec:
            pass  # the docker CLI says why, or makes it where the API could not
    return run_attached(argv)


def main() -> None:
    argv = quick_argv(sys.argv[1:], os.environ, os.getpid())
    if argv is not None:
        code = attach(argv, os.environ)
        if code != FALLBACK:
            sys.exit(code)
    full()
