"""`hal-agent`: the parent container's entrypoint and the commands typed in its dashboard."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import NoReturn

import click
import docker

from hal_common import __version__, paths
from hal_common.config import Config, load_config
from hal_common.config_cli import parent_group
from hal_common.engine import connect, translated
from hal_common.errors import HalError, UsageError
from parent_agent import sessions, workers
from parent_agent.tmux_ui import TmuxUI, attach_argv, server_for

log = logging.getLogger("parent_agent")


def _config() -> Config:
    cfg = load_config(paths.config_file(in_parent=True))
    for w in cfg.warnings:
        log.warning("%s", w)
    return cfg


def _inner() -> docker.DockerClient:
    return connect(
        os.environ.get("HAL_INNER_DOCKER_HOST", paths.INNER_DOCKER_HOST),
        "the parent's inner engine",
        hint="hal-agent run starts it; see /var/log/hal9000/dockerd.log",
    )


def _setup_logging(level: str, to_file: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if to_file:
        paths.LOG_DIR.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(paths.LOG_DIR / "agent.log"))
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )


class _Group(click.Group):
    """Maps HalErrors to a message and their exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HalError as e:
            click.secho(f"hal-agent: {e}", err=True, fg="red")
            ctx.exit(e.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="hal-agent")
def main() -> None:
    """Run and control hal-9000's workers from inside the parent container."""


main.add_command(parent_group())


@main.command()
def run() -> None:
    """The parent's main process: dockerd, tmux, dashboard, reconcile loop (PID 1 under tini)."""
    from parent_agent.agent import Agent

    cfg = _config()
    _setup_logging(cfg.log.level, to_file=True)
    try:
        code = Agent(cfg).run()
    except HalError as e:
        log.critical("%s", e)
        code = e.exit_code
    sys.exit(code)


@main.command()
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait.")
def ready(timeout: float) -> None:
    """Wait until `hal-agent run` has its engine and tmux up (exit 1 on timeout)."""
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    while not paths.READY_FILE.exists():
        if time.monotonic() > deadline:
            raise HalError(
                f"the parent is not ready after {timeout:.0f}s",
                hint="see `docker logs` of the parent and /var/log/hal9000/ in it",
            )
        stop.wait(0.02)


def _spawn(directory: str, image_id: str | None, with_window: bool) -> str:
    cfg = _config()
    ui = TmuxUI(server_for()) if with_window else None
    spec = sessions.spawn(_inner(), ui, cfg, directory, image_id=image_id)
    return spec.session


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--no-attach", is_flag=True, help="Create the worker and window, don't attach.")
@click.option("--no-window", is_flag=True, hidden=True, help="Worker only (tests, benchmarks).")
@click.option("--image-id", default=None, hidden=True, help="Expected worker image id.")
def spawn(directory: str, no_attach: bool, no_window: bool, image_id: str | None) -> None:
    """Start (or reuse) the worker for DIRECTORY and show its window."""
    name = _spawn(directory, image_id, with_window=not no_window)
    if no_attach or no_window:
        click.echo(name)
        return
    _exec_attach(name)


@main.command()
@click.argument("target")
@click.option("--image-id", default=None, hidden=True, help="Expected worker image id.")
def attach(target: str, image_id: str | None) -> None:
    """Attach this terminal to a worker's window: TARGET is a session name or a project path.

    A project path that has no worker yet gets one (as `spawn`).
    """
    if os.path.isdir(target):
        name = _spawn(target, image_id, with_window=True)
    else:
        name = sessions.resolve_name(_inner(), target)
        c = workers.find_worker(_inner(), name)
        if c.status != "running":
            raise UsageError(f"worker {name} is {c.status}", hint=f"hal-agent spawn {target}")
        from parent_agent.tmux_ui import worker_window_command

        TmuxUI(server_for()).ensure_window(name, worker_window_command(c.name or ""))
    _exec_attach(name)


def _exec_attach(window: str | None) -> NoReturn:
    argv = attach_argv(paths.TMUX_SOCK, window, inside_tmux=bool(os.environ.get("TMUX")))
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - the terminal is handed to tmux


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per worker, in a list.")
def ls(as_json: bool) -> None:
    """List workers (found by label in the inner engine)."""
    found = workers.list_workers(_inner())
    windows = TmuxUI(server_for()).window_names()
    if as_json:
        rows = [
            {"name": w.name, "project": w.project, "state": w.state, "image": w.image,
             "created": w.created.isoformat() if w.created else None,
             "window": w.name in windows}
            for w in found
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2))
        return
    for w in found:
        click.echo(f"{w.name:34} {w.state:9} {'win' if w.name in windows else '-':4} {w.project}")


@main.command()
def dashboard() -> None:
    """The live worker list (runs in the dashboard window's top pane)."""
    from parent_agent.dashboard_live import Gather, run_live

    cfg = _config()
    _setup_logging("warning", to_file=False)
    with contextlib.suppress(KeyboardInterrupt):  # ctrl-c in the pane ends it quietly
        run_live(Gather(_inner, TmuxUI(server_for())), cfg.dashboard.refresh, threading.Event())


def _chunks(stream: object, size: int = 1 << 20) -> Iterator[bytes]:
    read = getattr(stream, "read")  # noqa: B009 - a binary stream, typed loosely by click
    while chunk := read(size):
        yield chunk


@main.command("load-image")
def load_image() -> None:
    """Load an image tar (a `docker save` stream) from stdin into the inner engine."""
    client = _inner()
    with translated("loading the image into the inner engine"):
        lines = client.api.load_image(_chunks(sys.stdin.buffer), quiet=True)  # type: ignore[no-untyped-call]
        for line in lines:
            if "error" in line:
                raise HalError(f"inner engine refused the image: {line['error']}")
            if "stream" in line:
                click.echo(str(line["stream"]).strip())


@main.command("image-id")
@click.argument("image")
def image_id(image: str) -> None:
    """Print IMAGE's id in the inner engine (exit 5 when it is missing)."""
    try:
        workers.check_image(_inner(), image, None)
    except HalError as e:
        click.echo(str(e), err=True)
        sys.exit(5)
    click.echo(_inner().images.get(image).id)
