"""`hal-agent`'s entry point: a spawn is asked of the loop, with built-in modules alone.

`hal-agent spawn DIR` in a process of its own spends most of its time importing docker-py,
libtmux, click and the config's parser (about 0.3 s of a 0.8 s spawn on a 2-core machine,
issue 13 row 1); the parent's loop (`hal-agent run`) has them all loaded. So for the
command lines a spawn is made of, this entry sends the request over the loop's control
socket (parent_agent/app/spawns.py runs the same `sessions.spawn` there) and does only what
needs this process: print the session, show the warnings, hold the terminal on a note, and
exec the tmux client that attaches it.

    hal-agent spawn /ABS/DIR [--no-window | --no-attach] [--name N] [--image I]
                             [--image-id ID] [--client C]
    hal-agent attach /ABS/DIR [--image-id ID] [--client C]

Any other command line (a task, a relative path, a global option, --help, completion), no
loop listening, a loop that is busy or says `fallback` (a project image to build, with its
progress on this terminal): the full click command (commands/cli.py), exactly as before.
lint-imports holds the imports (no click, docker, libtmux, rich, tomlkit, config).
"""

from __future__ import annotations

import os
import sys

from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from parent_agent.adapters.control import ask
from parent_agent.core.control import MAX_BYTES, Answer, SpawnWorker, encode_request

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping

ASK_TIMEOUT = 600.0  # a stopped worker's start waits for its image check, its MCP servers
FLAGS = {"spawn": ("--no-window", "--no-attach"), "attach": ()}
VALUED = {
    "spawn": ("--name", "--image", "--image-id", "--client"),
    "attach": ("--image-id", "--client"),
}


def quick_request(args: list[str], env: Mapping[str, str]) -> tuple[SpawnWorker, bool] | None:
    """The loop's request for `hal-agent ARGS` and whether the session is printed (not
    attached), or None: the full command."""
    if len(args) < 2 or args[0] not in FLAGS or "_HAL_AGENT_COMPLETE" in env:
        return None
    command, directory, rest = args[0], args[1], args[2:]
    if not directory.startswith("/") or "\x00" in directory:
        return None
    flags: set[str] = set()
    valued: dict[str, str] = {}
    while rest:
        word = rest.pop(0)
        if word in FLAGS[command] and word not in flags:
            flags.add(word)
        elif word in VALUED[command] and word not in valued and rest:
            valued[word] = rest.pop(0)
        else:
            return None  # --help, --task, -v, `--name=x`, a second directory: click's
    req = SpawnWorker(
        directory=directory,
        window="--no-window" not in flags,
        client=valued.get("--client", ""),
        name=valued.get("--name", ""),
        image=valued.get("--image", ""),
        image_id=valued.get("--image-id", ""),
        env=tuple(sorted(env.items())),
    )
    if len(encode_request(req)) > MAX_BYTES:  # an environment of that size: click's
        return None
    return req, bool(flags)


def _say(line: str, error: bool, env: Mapping[str, str]) -> None:
    """A line on stderr as click would put it: an error red on a terminal (NO_COLOR aside)."""
    if error and sys.stderr.isatty() and not env.get("NO_COLOR"):
        line = f"\x1b[31m{line}\x1b[0m"
    print(line, file=sys.stderr, flush=True)


def finish(req: SpawnWorker, printed: bool, answer: Answer, env: Mapping[str, str]) -> int:
    """What the command does with the loop's answer; its exit code (or it execs tmux)."""
    for note in answer.notes:
        _say(note, error=False, env=env)
    if not answer.ok:
        _say(f"hal-agent: {answer.error}", error=True, env=env)
        return answer.code or 1
    if printed:
        print(answer.value, flush=True)
        return 0
    if req.client:  # the loop showed it on that client
        return 0
    from parent_agent.core.tmux import HOLD_PROMPT, attach_argv, inside_tmux  # the attach only

    if answer.hold and sys.stdin.isatty():  # as commands/workers.warn
        print(HOLD_PROMPT, file=sys.stderr, flush=True)
        sys.stdin.readline()
    sock = ParentLayout.from_env(env).tmux_sock
    argv = attach_argv(sock, answer.value, inside_tmux=inside_tmux(env, sock))
    os.execvp(argv[0], argv)  # noqa: S606 - the terminal is handed to tmux


def main() -> None:
    env = os.environ
    got = quick_request(sys.argv[1:], env)
    if got is not None:
        req, printed = got
        try:
            answer = ask(ParentLayout.from_env(env).control_socket, req, ASK_TIMEOUT)
        except HalError:  # no loop, not reachable: the full command does it (and says why)
            answer = Answer(False, fallback=True)
        except KeyboardInterrupt:  # as click says it (the loop finishes what it began)
            print("\nAborted!", file=sys.stderr)
            sys.exit(1)
        if not answer.fallback:
            sys.exit(finish(req, printed, answer, env))
    from parent_agent.commands.cli import main as full

    full(prog_name="hal-agent")  # as `python -m parent_agent` too
