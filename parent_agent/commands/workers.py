"""hal-agent's worker commands: spawn, attach, ls, start, stop, restart, rm, logs, shell, gc,
send, and the next-waiting key."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Literal, NoReturn

import click

from hal_common.errors import ConfigError, HalError, UsageError
from hal_common.layout import WORKER_BIN
from hal_common.protocol import LsReply
from hal_io import manners
from hal_io.manners import complete_worker
from parent_agent.adapters import snapshot_file, workers
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app import sessions, tasks
from parent_agent.commands.context import Parent, pass_parent
from parent_agent.core.agent_state import AgentState
from parent_agent.core.keys import next_waiting
from parent_agent.core.listing import gc_plan, ls_row, parse_duration
from parent_agent.core.model import Worker
from parent_agent.core.spec import WorkerSpec
from parent_agent.core.tmux import DETACH_KEYS, HOLD_PROMPT, attach_argv, worker_window_command

CLIENT = click.option("--client", default=None, hidden=True, help="tmux client to show it on.")


def exec_attach(p: Parent, window: str | None) -> NoReturn:
    argv = attach_argv(p.layout.tmux_sock, window, inside_tmux=p.inside_our_tmux())
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - the terminal is handed to tmux


def window_for(p: Parent, name: str, container: str, client: str | None) -> None:
    """Ensure `name`'s window; show it on `client` when one is given."""
    ui = p.ui()
    ui.ensure_window(name, worker_window_command(container, p.layout.inner_docker_host))
    if client:
        ui.focus(client, name)


def show(p: Parent, name: str, container: str, client: str | None) -> None:
    """Ensure `name`'s window, then show it: on `client`, or by attaching this terminal."""
    window_for(p, name, container, client)
    if not client:
        exec_attach(p, name)


def _worker(
    p: Parent, name_or_dir: str, engine: InnerEngine | None = None
) -> tuple[InnerEngine, str, Worker]:
    engine = engine or p.inner()
    name = sessions.resolve_name(engine, name_or_dir, p.layout)
    return engine, name, workers.find_worker(engine, name)


def _allowed(p: Parent, w: Worker) -> None:
    """A worker is shown or started only while its project passes the path policy: one made
    before the policy (or before a root moved) is refused, though it may still be stopped,
    removed, or its logs read."""
    sessions.project_path(w.project, p.layout)
    # the engine mounts the repository's git paths again at each start: none may have
    # become a link since (a worker of the repository could have swapped one)
    tasks.git_mounts(w.project)


@contextmanager
def _told(p: Parent, client: str | None) -> Iterator[None]:
    """A refusal is said on `client`'s screen too (a key or menu ran us in the background,
    where only the exit code would say it); it still exits with its code."""
    try:
        yield
    except (UsageError, ConfigError) as e:  # a refusal: the path policy, a .hal9000.toml
        if client:
            with suppress(Exception):  # the refusal stands, said or not
                p.ui().message(client, f"hal-agent: {e.message}", hold=True)
        raise


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Session name (default: <dir>-<hash of its path>).")
@click.option(
    "--task",
    default=None,
    metavar="NAME",
    help="A task: a worktree of DIRECTORY's repository on branch hal/NAME, its own worker.",
)
@click.option(
    "--from", "from_ref", default=None, metavar="REF", help="With --task: start from REF (HEAD)."
)
@click.option("--image", default=None, help="Worker image (default: [worker].image).")
@click.option("--no-attach", is_flag=True, help="Create the worker and its window only.")
@click.option("--no-window", is_flag=True, hidden=True, help="Worker only (benchmarks).")
@click.option("--image-id", default=None, hidden=True, help="Expected worker image id.")
@CLIENT
@pass_parent
def spawn(
    p: Parent,
    directory: str,
    name: str | None,
    task: str | None,
    from_ref: str | None,
    image: str | None,
    no_attach: bool,
    no_window: bool,
    image_id: str | None,
    client: str | None,
) -> None:
    """Start (or reuse) the worker for DIRECTORY and show its window.

    With --task NAME: a worktree of DIRECTORY's repository at `.hal9000/tasks/NAME`, on
    branch hal/NAME (made from HEAD or --from REF; found again when it exists), with its
    own worker. `hal-agent diff NAME` shows what it changed; `hal-agent rm NAME` removes it.
    """
    with _told(p, client):
        sessions.project_path(directory, p.layout)  # before the config, engine and tmux
        if task is None and from_ref is not None:
            raise UsageError(
                "--from goes with --task", hint="hal-agent spawn DIR --task NAME --from REF"
            )
        if task is not None and name is not None:
            raise UsageError(
                "--name does not go with --task: a task's worker is named by its folder"
            )
    cfg = p.config()
    ui = None if no_window else p.ui()
    with _told(p, client):
        if task is not None:
            spec = sessions.spawn_task(
                p.inner(), ui, cfg, directory, task, from_ref, p.layout, p.env,
                image_id=image_id, image=image, progress=progress(p, client),
            )  # fmt: skip
        else:
            spec = sessions.spawn(
                p.inner(), ui, cfg, directory, p.layout, p.env, image_id=image_id, name=name,
                image=image, progress=progress(p, client),
            )  # fmt: skip
    if no_attach or no_window:
        click.echo(spec.session)
        return
    warn(p, spec, client)
    if client:
        p.ui().focus(client, spec.session)
    else:
        exec_attach(p, spec.session)


def progress(p: Parent, client: str | None) -> Callable[[str], None]:
    """Where a project image's build shows: this terminal, line by line; with a client (a
    key ran us in the background), its status line."""
    if not client:
        return lambda line: click.echo(line, err=True)

    def show(line: str) -> None:
        with suppress(Exception):  # a status line is a courtesy; the build goes on
            p.ui().message(client, f"hal-agent: {line[:200]}")

    return show


def warn(p: Parent, spec: WorkerSpec, client: str | None) -> None:
    """Say so before the user lands in a project the agent cannot write: on the client's
    status line until a key is pressed, or on this terminal until Enter (never unseen
    behind tmux)."""
    note = sessions.write_warning(spec)
    if note is None:
        return
    if client:
        p.ui().message(client, f"hal-agent: {note}", hold=True)
        return
    # the spawn logged the note on this terminal already (stderr): hold it there
    if sys.stdin.isatty():
        click.pause(HOLD_PROMPT)


@click.command()
@click.argument("target", shell_complete=complete_worker)
@click.option("--image-id", default=None, hidden=True, help="Expected worker image id.")
@CLIENT
@pass_parent
def attach(p: Parent, target: str, image_id: str | None, client: str | None) -> None:
    """Show a worker's window: TARGET is a session name or a project path.

    A project path without a worker gets one (as `spawn`); a stopped worker is started.
    """
    if sessions.looks_like_path(target):
        with _told(p, client):
            sessions.project_path(target, p.layout)  # before the engine and tmux
    inner = p.inner()
    if sessions.looks_like_path(target):
        spec = sessions.spawn(
            inner,
            p.ui(),
            p.config(),
            target,
            p.layout,
            p.env,
            image_id=image_id,
            progress=progress(p, client),
        )
        name, container = spec.session, spec.container
        warn(p, spec, client)
    else:
        _, name, w = _worker(p, target, inner)
        with _told(p, client):
            _allowed(p, w)
        if w.state != "running":
            workers.check_fenced(p.layout)
            inner.start(w.container, f"starting {name}")
        container = w.container
    show(p, name, container, client)


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="The stable JSON schema (see docs/cli.md).")
@click.option("--all", "-a", "show_all", is_flag=True, help="Include stopped workers.")
@pass_parent
def ls_(p: Parent, as_json: bool, show_all: bool) -> None:
    """List workers (found by label in the inner engine)."""
    found = workers.list_workers(p.inner())
    if not show_all:
        found = [w for w in found if w.state == "running"]
    windows = p.ui().window_names()
    agents = published_agents(p)
    now = datetime.now(UTC)
    target = claude_target(p)
    found = grouped(found)
    states = {w.name: tasks.state_of(w.project, w.base) for w in found}
    rows = [ls_row(w, now, windows, agents.get(w.name), target, states[w.name]) for w in found]
    if as_json:
        click.echo(LsReply.from_json(rows).dumps())
        return
    if not rows:
        click.echo("no workers" + ("" if show_all else " running (--all shows stopped ones)"))
        return
    click.echo(f"{'NAME':32} {'STATE':8} {'WIN':4} {'AGENT':16} {'CLAUDE':18} PROJECT")
    shown_repo = ""
    for w, r in zip(found, rows, strict=True):
        win = "win" if r["window"] else "-"
        agent = agents.get(w.name)
        label = agent.label() if agent else "-"
        code = (w.claude or "?") + (" outdated" if r["claude"]["outdated"] else "")
        where = r["project"]
        if w.task:
            if w.repo != shown_repo and not any(o.project == w.repo for o in found):
                click.echo(f"{'':32} {'':8} {'':4} {'':16} {'':18} {w.repo}")
            where = "  └ " + task_words(w.task, r)
        shown_repo = w.repo or w.project
        click.echo(f"{r['name']:32} {r['state']:8} {win:4} {label:16} {code:18} {where}")


def grouped(found: list[Worker]) -> list[Worker]:
    """Workers in groups: each repository's own worker, then its tasks by name."""
    return sorted(found, key=group_key)


def group_key(w: Worker) -> tuple[str, int, str]:
    return (w.repo or w.project, 1 if w.task else 0, w.name)


def task_words(task: str, row: dict[str, object]) -> str:
    """`task fix on hal/fix, 2 ahead, dirty`."""
    words = f"task {task}"
    if row.get("branch"):
        words += f" on {row['branch']}"
    if row.get("ahead") is not None:
        words += f", {row['ahead']} ahead"
    if row.get("dirty"):
        words += ", dirty"
    return words


def claude_target(p: Parent) -> str | None:
    """The Claude Code version a new spawn or restart gets (None: none installed)."""
    from hal_common import claude_code
    from parent_agent.adapters import claude_store

    pin = p.config().claude.version
    return claude_code.target(
        pin, [i.version for i in claude_store.installed(p.layout.claude_store)]
    )


def published_agents(p: Parent) -> dict[str, AgentState]:
    """Each worker's agent state as the loop last published it; none when there is no
    snapshot (the loop is starting, or gone): the listing goes on without them."""
    snap = snapshot_file.read(p.layout.status_file)
    return dict(snap.agents) if snap is not None else {}


@click.command()
@click.argument("name", shell_complete=complete_worker)
@CLIENT
@pass_parent
def start(p: Parent, name: str, client: str | None) -> None:
    """Start a stopped worker (its agent starts afresh) and open its window."""
    engine, name, w = _worker(p, name)
    with _told(p, client):
        _allowed(p, w)
    workers.check_fenced(p.layout)
    if not renew_claude(p, engine, w):
        engine.start(w.container, f"starting {name}")
    window_for(p, name, w.container, client)
    click.echo(f"started {name}")


@click.command()
@click.argument("name", shell_complete=complete_worker)
@click.option("--timeout", default=10, show_default=True, help="Seconds before SIGKILL.")
@pass_parent
def stop(p: Parent, name: str, timeout: int) -> None:
    """Stop a worker (its container and agent); its window closes."""
    engine, name, w = _worker(p, name)
    engine.stop(w.container, timeout=timeout, what=f"stopping {name}")
    p.ui().kill_window(name)
    click.echo(f"stopped {name}")


@click.command()
@click.argument("name", shell_complete=complete_worker)
@CLIENT
@pass_parent
def restart(p: Parent, name: str, client: str | None) -> None:
    """Restart a worker: a fresh agent in the same container, shown in a fresh window."""
    restart_worker(p, name, client)
    click.echo(f"restarted {name}")


def restart_worker(p: Parent, name: str, client: str | None) -> None:
    engine, name, w = _worker(p, name)
    with _told(p, client):
        _allowed(p, w)
    p.ui().kill_window(name)
    workers.check_fenced(p.layout)
    if not renew_claude(p, engine, w):
        engine.restart(w.container, timeout=10, what=f"restarting {name}")
    window_for(p, name, w.container, client)


def renew_claude(p: Parent, engine: InnerEngine, w: Worker) -> bool:
    """A worker whose Claude Code is not the one a restart gives is stopped and made afresh
    with it (its container is recreated: the mount is fixed at creation; its Claude state,
    and so its conversation, stays). False when its version is current (nothing done)."""
    target = claude_target(p)
    if target is None or w.claude == target:
        return False
    from parent_agent.adapters import claude_store

    # a pinned version that is not installed: refused before the worker is touched
    claude_store.resolve(p.layout.claude_store, p.config().claude.version)
    if w.state == "running":
        engine.stop(w.container, timeout=10, what=f"stopping {w.name} for Claude Code {target}")
    sessions.spawn(engine, None, p.config(), w.project, p.layout, p.env, name=w.name, image=w.image)
    return True


@click.command()
@click.argument("name", shell_complete=complete_worker)
@click.option("--force", "-f", is_flag=True, help="Remove a running worker too.")
@click.option(
    "--keep-branch/--delete-branch",
    "keep",
    default=None,
    help="A task: keep its branch hal/NAME (asked on a terminal; kept without one).",
)
@click.option(
    "--discard",
    is_flag=True,
    help="A task: lose its uncommitted changes, and (with --delete-branch) commits no other "
    "branch or tag holds.",
)
@pass_parent
def rm(p: Parent, name: str, force: bool, keep: bool | None, discard: bool) -> None:
    """Remove a worker's container (the project's files are untouched).

    A task's worker (NAME: its session or its task name): its worktree goes too; its branch
    stays unless --delete-branch (or you say so when asked). Work that would be lost
    (uncommitted changes; commits only on a deleted branch) is refused without --discard.
    """
    engine, name, w = _worker(p, name)
    if w.state == "running" and not force:
        raise UsageError(f"{name} is running", hint=f"hal-agent stop {name}, or rm --force")
    task = _task_of(w)
    if task is not None:
        copied = p.config().worker.copy
        # uncommitted changes are lost whatever becomes of the branch: said before asking
        early = tasks.loss(task, delete_branch=False, copied=copied)
        if early.changes and not discard:
            _refuse_loss(task, name, early)
        keep = _ask_keep(task, keep)
        lost = tasks.loss(task, delete_branch=not keep, copied=copied)
        if (lost.changes or lost.commits) and not discard:
            _refuse_loss(task, name, lost)
    engine.remove(w.container, force=True, what=f"removing {name}")
    p.ui().kill_window(name)
    if task is None:
        click.echo(f"removed {name}")
        return
    tasks.remove(task, delete_branch=not keep)
    kept = f"branch {task.branch} kept" if keep else f"branch {task.branch} deleted"
    click.echo(f"removed {name} and its worktree {task.path} ({kept})")


def _refuse_loss(task: tasks.Task, name: str, lost: tasks.Loss) -> NoReturn:
    raise UsageError(
        f"removing task {task.name} would lose {lost.words()}",
        hint=f"commit them, or rm {name} --discard"
        + ("; --keep-branch keeps the commits" if lost.commits else ""),
    )


def _task_of(w: Worker) -> tasks.Task | None:
    """The task whose worker `w` is, while its worktree is there (None: not a task, or the
    worktree is gone already)."""
    if not w.task:
        return None
    try:
        return tasks.open_task(w.project, w.base)
    except UsageError:
        return None


def _ask_keep(task: tasks.Task, keep: bool | None) -> bool:
    """Keep the task's branch? As told; else asked on a terminal (default: keep); else kept."""
    if keep is not None:
        return keep
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return True
    return click.confirm(f"keep branch {task.branch}?", default=True)


@click.command()
@click.argument("name", shell_complete=complete_worker)
@click.option("--stat", "stat_only", is_flag=True, help="A summary of the files changed only.")
@click.option("--no-pager", is_flag=True, help="Print it, even on a terminal.")
@pass_parent
def diff(p: Parent, name: str, stat_only: bool, no_pager: bool) -> None:
    """What a task changed against its base: its commits and its uncommitted changes, then
    its untracked files as new ones (NAME: a task, its worker, or any worker of a git
    project, against HEAD). Paged on a terminal (`less -R`, through `delta` when there is
    one)."""
    _, name, w = _worker(p, name)
    paged = sys.stdout.isatty() and not no_pager
    delta = shutil.which("delta") if paged and not stat_only else None
    color = (paged or sys.stdout.isatty()) and manners.color() and delta is None
    found = tasks.diff(w.project, w.base, color=color, stat_only=stat_only)
    text = found.head.encode() + found.body
    if found.cut:
        text += (
            f"\n# cut at {tasks.DIFF_LIMIT >> 20} MiB: git -C {w.project} diff shows all\n".encode()
        )
    elif not found.body:
        text += b"# no changes\n"
    if not paged:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
        return
    page(text, delta)


def page(text: bytes, delta: str | None) -> None:
    """`text` through `delta` (when given) into `less -R` on this terminal. less runs with
    LESSSECURE (no shell, editor or log file from inside it): the text is a worker's."""
    env = {**os.environ, "LESS": "-R", "LESSSECURE": "1", "LESSHISTFILE": "-"}
    less = shutil.which("less")
    if less is None:
        sys.stdout.buffer.write(text)
        return
    if delta is not None:
        colored = subprocess.run(
            [delta, "--paging=never"], input=text, capture_output=True, timeout=60, check=False
        )
        text = colored.stdout if colored.returncode == 0 else text
    with suppress(BrokenPipeError):
        subprocess.run([less], input=text, env=env, check=False)


@click.command()
@click.argument("name", required=False, shell_complete=complete_worker)
@click.option("--agent", "own", flag_value="agent", help="The parent's loop (hal-agent run).")
@click.option("--dockerd", "own", flag_value="dockerd", help="The parent's inner engine.")
@click.option("--dashboard", "own", flag_value="dashboard", help="The dashboard pane.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", "tail_", default="all", show_default=True, help="Lines from the end.")
@pass_parent
def logs(p: Parent, name: str | None, own: str | None, follow: bool, tail_: str) -> None:
    """A worker's own log (its entrypoint and tmux server; the agent draws in its window),
    or, with --agent, --dockerd or --dashboard, the parent's (in the data volume, rotated)."""
    if tail_ != "all" and not tail_.isdigit():
        raise UsageError(f"--tail takes a number or 'all', not {tail_!r}")
    tail: int | Literal["all"] = int(tail_) if tail_.isdigit() else "all"
    if own is not None and name is None:
        from parent_agent.commands.logs import show_log

        show_log(p.layout, own, None if tail == "all" else tail, follow)
        return
    if name is None or own is not None:
        raise UsageError(
            "say whose log: a worker's NAME, or one of --agent, --dockerd, --dashboard",
            hint="hal-agent logs myproj-1a2b3c4d; hal-agent logs --agent -f",
        )
    engine, name, w = _worker(p, name)
    what = f"reading the log of {name}"
    if follow:
        for chunk in engine.follow_logs(w.container, tail=tail, what=what):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    else:
        sys.stdout.buffer.write(engine.logs(w.container, tail=tail, what=what))


def shell_argv(docker_host: str, container: str) -> list[str]:
    return ["docker", "-H", docker_host, "exec", "-it", "--detach-keys", DETACH_KEYS,
            "-e", "TERM=tmux-256color", container, "sh", "-c",
            "command -v bash >/dev/null && exec bash -l || exec sh -l"]  # fmt: skip


@click.command()
@click.argument("name", shell_complete=complete_worker)
@CLIENT
@pass_parent
def shell(p: Parent, name: str, client: str | None) -> None:
    """A shell inside the worker: a new window in tmux, else this terminal."""
    open_shell(p, name, client)


def open_shell(p: Parent, name: str, client: str | None) -> None:
    _, name, w = _worker(p, name)
    if w.state != "running":
        raise UsageError(f"{name} is {w.state}", hint=f"hal-agent start {name}")
    argv = shell_argv(p.layout.inner_docker_host, w.container)
    if client or p.inside_our_tmux():
        ui = p.ui()
        window = f"{name}/sh"
        target_client = client or _current_client(p)
        ui.open_window(window, "exec " + shlex.join(argv), target_client)
        return
    os.execvp(argv[0], argv)  # noqa: S606 - the terminal is handed to docker exec


def _current_client(p: Parent) -> str | None:
    pane = p.env.get("TMUX_PANE")
    if not pane:
        return None
    out = p.ui().server.cmd("display-message", "-p", "-t", pane, "#{client_name}").stdout
    return out[0] if out and out[0] else None


@click.command()
@click.option("--older-than", default="0s", show_default=True, help="Only stopped for this long.")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@pass_parent
def gc(p: Parent, older_than: str, dry_run: bool) -> None:
    """Remove stopped workers and orphans (project gone), found by label only."""
    engine = p.inner()
    plan = gc_plan(
        workers.list_workers(engine), datetime.now(UTC), parse_duration(older_than), os.path.isdir
    )
    if not plan:
        click.echo("nothing to collect")
        return
    for item in plan:
        if not dry_run:
            engine.remove(item.worker.container, what=f"removing {item.worker.container}")
        click.echo(f"{'would remove' if dry_run else 'removed'} {item.worker.name} ({item.reason})")


@click.command()
@click.argument("name", shell_complete=complete_worker)
@click.argument("text", nargs=-1)
@click.option("--no-enter", is_flag=True, help="Type TEXT without pressing Enter after it.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="A tmux key name to press after TEXT (Enter, Escape, Up, Down, C-c, …); repeatable.",
)
@pass_parent
def send(
    p: Parent, name: str, text: tuple[str, ...], no_enter: bool, keys: tuple[str, ...]
) -> None:
    """Type TEXT into NAME's Claude as from the keyboard, then Enter (then each --key).

    TEXT's words are joined by spaces. `send NAME yes`, `send NAME --key Down --key Enter`.
    """
    typed = " ".join(text)
    if not typed and not keys:
        raise UsageError("nothing to send", hint="give TEXT, or --key KEY")
    engine, name, w = _worker(p, name)
    if w.state != "running":
        raise UsageError(f"{name} is {w.state}, not running", hint=f"hal-agent start {name}")
    settle(published_agents(p).get(name))
    for argv in send_argvs(typed, no_enter, keys):
        res = engine.exec(w.container, argv, f"sending keys to {name}")
        if res.exit_code != 0:
            said = res.output.strip() or f"exit code {res.exit_code}"
            raise HalError(f"{name} did not take the keys: {said}")


DIALOG_SETTLE_S = 0.5  # Claude Code drops keys in a dialog's first ~0.3 s (2.1.332)


def settle(agent: AgentState | None) -> None:
    """Wait until a dialog that just opened takes keys: an answer sent at once (a script
    that saw `waiting`) would be dropped without a word."""
    if agent is None or not agent.needs_you:
        return
    age = (datetime.now(UTC) - agent.since).total_seconds()
    if 0 <= age < DIALOG_SETTLE_S:
        time.sleep(DIALOG_SETTLE_S - age)


def send_argvs(text: str, no_enter: bool, keys: tuple[str, ...]) -> list[list[str]]:
    """The `hal-worker` commands that type `text` (then Enter) and press `keys`, in order."""
    argvs = []
    if text:
        # `--`: a text that starts with a dash (or is `--no-enter`) is typed, not parsed
        argvs.append([WORKER_BIN, "send", *(["--no-enter"] if no_enter else []), "--", text])
    if keys:
        argvs.append([WORKER_BIN, "keys", *keys])
    return argvs


def go_next_waiting(p: Parent, client: str, window: str) -> None:
    """The `next_waiting` key: show `client` the next worker whose agent needs the user
    (after `window`, oldest wait first), from the loop's published snapshot."""
    ui = p.ui()
    found = next_waiting(published_agents(p), ui.window_names(), window)
    if found is None:
        ui.message(client, "no agent needs you")
        return
    target, count = found
    ui.focus(client, target)
    if count > 1:
        ui.message(client, f"{count} agents need you")
