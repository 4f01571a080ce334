"""The reattach fast path (pure): one cheap probe of the running parent, then tmux directly.

When the parent is ready, holds the host's worker image, and DIR's worker runs with a
window, `claudy DIR` needs none of the slow path's steps (builds, parent checks, image
transfer, hal-agent's Python start-up in the parent): it hands the terminal straight to
`tmux attach`. Anything else falls back to the full path, which repairs what is missing.
The probe runs through `ParentClient.probe`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal_common.layout import ParentLayout
from hal_common.protocol import DETACH_KEYS, SESSION_TARGET, WINDOW_OPTION
from host_shim.core.hint import FALLBACK


def probe_script(layout: ParentLayout) -> str:
    """One exec, no Python: readiness, the inner worker image id, the worker, its windows.

    `$1` is the worker image, `$2` the worker's container name.
    """
    return (
        f"test -e {layout.ready_file} || exit 3\n"
        "docker image inspect -f '{{.Id}}' \"$1\" 2>/dev/null || echo none\n"
        "docker inspect -f '{{.State.Running}}' \"$2\" 2>/dev/null || echo absent\n"
        f"tmux -S {layout.tmux_sock} list-windows -t {SESSION_TARGET} "
        f"-F '#{{{WINDOW_OPTION}}}' 2>/dev/null\n"
        "exit 0\n"
    )


@dataclass(frozen=True)
class Probe:
    ready: bool
    inner_image: str = ""
    worker_running: bool = False
    windows: frozenset[str] = frozenset()


def parse_probe(code: int, out: str) -> Probe:
    """The probe's exit code and output → what it found."""
    if code != 0:
        return Probe(ready=False)
    lines = out.splitlines()
    if len(lines) < 2:
        return Probe(ready=False)
    image = lines[0].strip()
    return Probe(
        ready=True,
        inner_image="" if image == "none" else image,
        worker_running=lines[1].strip() == "true",
        windows=frozenset(line.strip() for line in lines[2:] if line.strip()),
    )


def attachable(p: Probe, host_image: str, session: str, need_window: bool) -> bool:
    """True when nothing needs doing before showing `session`."""
    return (
        p.ready
        and p.inner_image == host_image
        and p.worker_running
        and (session in p.windows or not need_window)
    )


def attach_argv(
    docker_cli: str, parent: str, session: str, term: str, pid: int, layout: ParentLayout
) -> list[str]:
    """`docker exec -it PARENT tmux …`: a view of its own (`hal-h<pid>`) in the group of
    `hal` (as hal-agent attach makes one), on `session`'s window. The parent's tmux removes
    the view when its client goes (parent_agent/core/tmux.py `reap_views_hook`)."""
    view = f"hal-h{pid}"
    return [docker_cli, "exec", "-it", "--detach-keys", DETACH_KEYS, "-e", f"TERM={term}",
            parent, "tmux", "-S", str(layout.tmux_sock), "new-session", "-t", SESSION_TARGET,
            "-s", view, ";", "select-window", "-t", f":={session}"]  # fmt: skip


# --- the quick entry's one exec (commands/quick.py; the hint is core/hint.py) --------------
#
# `sh -c ATTACH_SCRIPT` in the parent: POSIX sh (dash) and tmux, no Python and no docker CLI.
# It checks that the parent is ready and that DIR's window is there with a live pane (the
# window runs `exec docker exec -it WORKER hal-worker attach` and remain-on-exit is off: the
# window lives exactly while that exec into the running worker does), then becomes the tmux
# client in the same exec. A check that fails exits FALLBACK before the terminal is touched,
# printing nothing, and claudy takes the full path, which repairs. The host side checks the
# images (core/hint.py). Arguments: 1 the ready file, 2 the tmux socket, then as appended
# by the quick entry: 3 TERM, 4 the session (its window), 5 the view's name.
ATTACH_SCRIPT = f"""\
[ -e "$1" ] || exit {FALLBACK}
w=$(tmux -S "$2" list-windows -t {SESSION_TARGET} -F '#{{pane_dead}}#{{{WINDOW_OPTION}}}' \
2>/dev/null) || exit {FALLBACK}
case "
$w
" in *"
0$4
"*) ;; *) exit {FALLBACK} ;; esac
TERM=$3 exec tmux -S "$2" new-session -t {SESSION_TARGET} -s "$5" \\; \
select-window -t ":=$4"
"""


def quick_attach_head(parent: str, layout: ParentLayout) -> list[str]:
    """What the hint keeps of the quick entry's exec: `exec -it … PARENT sh -c ATTACH_SCRIPT
    hal-attach READY TMUX`; the quick entry puts the docker CLI first and appends TERM, the
    session and its view's name (`hal-h<pid>`, as `attach_argv`)."""
    return ["exec", "-it", "--detach-keys", DETACH_KEYS, parent, "sh", "-c", ATTACH_SCRIPT,
            "hal-attach", str(layout.ready_file), str(layout.tmux_sock)]  # fmt: skip
