"""hal-agent's worker commands: spawn, attach, ls, start, stop, restart, rm, logs, shell, gc."""

from __future__ import annotations

import os
import shlex
import sys
from datetime import UTC, datetime
from typing import Literal, NoReturn

import click
import docker
from docker.models.containers import Container

from hal_common import paths
from hal_common.errors import UsageError
from hal_common.protocol import LsReply
from hal_io.engine import translated
from parent_agent.adapters import workers
from parent_agent.app import sessions
from parent_agent.commands import context as ctx
from parent_agent.core.listing import gc_plan, ls_row, parse_duration
from parent_agent.core.tmux import DETACH_KEYS, attach_argv, worker_window_command

CLIENT = click.option("--client", default=None, hidden=True, help="tmux client to show it on.")


def exec_attach(window: str | None) -> NoReturn:
    argv = attach_argv(paths.TMUX_SOCK, window, inside_tmux=ctx.inside_our_tmux())
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - the terminal is handed to tmux


def window_for(name: str, container: str, client: str | None) -> None:
    """Ensure `name`'s window; show it on `client` when one is given."""
    ui = ctx.ui()
    ui.ensure_window(name, worker_window_command(container))
    if client:
        ui.focus(client, name)


def show(name: str, container: str, client: str | None) -> None:
    """Ensure `name`'s window, then show it: on `client`, or by attaching this terminal."""
    window_for(name, container, client)
    if not client:
        exec_attach(name)


def _worker(name_or_dir: str, client: docker.DockerClient | None = None) -> tuple[str, Container]:
    client = client or ctx.inner()
    name = sessions.resolve_name(client, name_or_dir)
    return name, workers.find_worker(client, name)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Session name (default: <dir>-<hash of its path>).")
@click.option("--image", default=None, help="Worker image (default: [worker].image).")
@click.option("--no-attach", is_flag=True, help="Create the worker and its window only.")
@click.option("--no-window", is_flag=True, hidden=True, help="Worker only (benchmarks).")
@click.option("--image-id", default=None, hidden=True, help="Expected worker image id.")
@CLIENT
def spawn(
    directory: str, name: str | None, image: str | None, no_attach: bool, no_window: bool,
    image_id: str | None, client: str | None,
) -> None:  # fmt: skip
    """Start (or reuse) the worker for DIRECTORY and show its window."""
    cfg = ctx.config()
    ui = None if no_window else ctx.ui()
    spec = sessions.spawn(ctx.inner(), ui, cfg, directory, image_id=image_id, name=name,
                          image=image)  # fmt: skip
    if no_attach or no_window:
        click.echo(spec.session)
    elif client:
        ctx.ui().focus(client, spec.session)
    else:
        exec_attach(spec.session)


@click.command()
@click.argument("target")
@click.option("--image-id", default=None, hidden=True, help="Expected worker image id.")
@CLIENT
def attach(target: str, image_id: str | None, client: str | None) -> None:
    """Show a worker's window: TARGET is a session name or a project path.

    A project path without a worker gets one (as `spawn`); a stopped worker is started.
    """
    inner = ctx.inner()
    if os.path.isdir(target) and workers.find_by_session(inner, target) is None:
        spec = sessions.spawn(inner, ctx.ui(), ctx.config(), target, image_id=image_id)
        name, container = spec.session, spec.container
    else:
        name, c = _worker(target, inner)
        if c.status != "running":
            with translated(f"starting {name}"):
                c.start()
        container = c.name or ""
    show(name, container, client)


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="The stable JSON schema (see docs/cli.md).")
@click.option("--all", "-a", "show_all", is_flag=True, help="Include stopped workers.")
def ls_(as_json: bool, show_all: bool) -> None:
    """List workers (found by label in the inner engine)."""
    found = workers.list_workers(ctx.inner())
    if not show_all:
        found = [w for w in found if w.state == "running"]
    windows = ctx.ui().window_names()
    now = datetime.now(UTC)
    rows = [ls_row(w, now, windows) for w in found]
    if as_json:
        click.echo(LsReply.from_json(rows).dumps())
        return
    if not rows:
        click.echo("no workers" + ("" if show_all else " running (--all shows stopped ones)"))
    for r in rows:
        win = "win" if r["window"] else "-"
        click.echo(f"{r['name']:32} {r['state']:8} {win:4} {r['project']}")


@click.command()
@click.argument("name")
@CLIENT
def start(name: str, client: str | None) -> None:
    """Start a stopped worker (its agent starts afresh) and open its window."""
    name, c = _worker(name)
    with translated(f"starting {name}"):
        c.start()
    window_for(name, c.name or "", client)
    click.echo(f"started {name}")


@click.command()
@click.argument("name")
@click.option("--timeout", default=10, show_default=True, help="Seconds before SIGKILL.")
def stop(name: str, timeout: int) -> None:
    """Stop a worker (its container and agent); its window closes."""
    name, c = _worker(name)
    with translated(f"stopping {name}"):
        c.stop(timeout=timeout)
    ctx.ui().kill_window(name)
    click.echo(f"stopped {name}")


@click.command()
@click.argument("name")
@CLIENT
def restart(name: str, client: str | None) -> None:
    """Restart a worker: a fresh agent in the same container, shown in a fresh window."""
    restart_worker(name, client)
    click.echo(f"restarted {name}")


def restart_worker(name: str, client: str | None) -> None:
    name, c = _worker(name)
    ctx.ui().kill_window(name)
    with translated(f"restarting {name}"):
        c.restart(timeout=10)
    window_for(name, c.name or "", client)


@click.command()
@click.argument("name")
@click.option("--force", "-f", is_flag=True, help="Remove a running worker too.")
def rm(name: str, force: bool) -> None:
    """Remove a worker's container (the project's files are untouched)."""
    name, c = _worker(name)
    if c.status == "running" and not force:
        raise UsageError(f"{name} is running", hint=f"hal-agent stop {name}, or rm --force")
    with translated(f"removing {name}"):
        c.remove(force=True)
    ctx.ui().kill_window(name)
    click.echo(f"removed {name}")


@click.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", "tail_", default="all", show_default=True, help="Lines from the end.")
def logs(name: str, follow: bool, tail_: str) -> None:
    """The worker's own log (its entrypoint and tmux server; the agent draws in its window)."""
    name, c = _worker(name)
    if tail_ != "all" and not tail_.isdigit():
        raise UsageError(f"--tail takes a number or 'all', not {tail_!r}")
    tail: int | Literal["all"] = int(tail_) if tail_.isdigit() else "all"
    with translated(f"reading the log of {name}"):
        if follow:
            for chunk in c.logs(stream=True, follow=True, tail=tail):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        else:
            sys.stdout.buffer.write(c.logs(tail=tail))


def shell_argv(container: str) -> list[str]:
    return ["docker", "-H", paths.INNER_DOCKER_HOST, "exec", "-it", "--detach-keys", DETACH_KEYS,
            "-e", "TERM=tmux-256color", container, "sh", "-c",
            "command -v bash >/dev/null && exec bash -l || exec sh -l"]  # fmt: skip


@click.command()
@click.argument("name")
@CLIENT
def shell(name: str, client: str | None) -> None:
    """A shell inside the worker: a new window in tmux, else this terminal."""
    open_shell(name, client)


def open_shell(name: str, client: str | None) -> None:
    name, c = _worker(name)
    if c.status != "running":
        raise UsageError(f"{name} is {c.status}", hint=f"hal-agent start {name}")
    argv = shell_argv(c.name or "")
    if client or ctx.inside_our_tmux():
        ui = ctx.ui()
        window = f"{name}/sh"
        target_client = client or _current_client()
        ui.open_window(window, "exec " + shlex.join(argv), target_client)
        return
    os.execvp(argv[0], argv)  # noqa: S606 - the terminal is handed to docker exec


def _current_client() -> str | None:
    pane = os.environ.get("TMUX_PANE")
    if not pane:
        return None
    out = ctx.ui().server.cmd("display-message", "-p", "-t", pane, "#{client_name}").stdout
    return out[0] if out and out[0] else None


@click.command()
@click.option("--older-than", default="0s", show_default=True, help="Only stopped for this long.")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
def gc(older_than: str, dry_run: bool) -> None:
    """Remove stopped workers and orphans (project gone), found by label only."""
    client = ctx.inner()
    plan = gc_plan(workers.list_workers(client), datetime.now(UTC),
                   parse_duration(older_than), os.path.isdir)  # fmt: skip
    if not plan:
        click.echo("nothing to collect")
        return
    for item in plan:
        if not dry_run:
            with translated(f"removing {item.worker.container}"):
                client.containers.get(item.worker.container).remove()
        click.echo(f"{'would remove' if dry_run else 'removed'} {item.worker.name} ({item.reason})")
