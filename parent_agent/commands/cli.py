"""`hal-agent`: the parent container's entrypoint and the commands typed in its dashboard.

Exit codes: 0 ok, 1 error, 2 usage, 3 engine unavailable, 5 no such session.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
import time
from collections.abc import Iterator

import click

from hal_common import __version__, paths
from hal_common.config import Config
from hal_common.errors import ConfigError, HalError
from hal_common.protocol import Health
from hal_io.engine import translated
from parent_agent.adapters import status_file, workers
from parent_agent.commands import context as ctx

log = logging.getLogger("parent_agent")


# Commands live in their modules and are imported when used: `hal-agent spawn` should not
# pay for rich's live display or the config editor (start-up time is on every key press).
LAZY = {
    **{name: f"parent_agent.commands.workers:{attr}" for name, attr in (
        ("spawn", "spawn"), ("attach", "attach"), ("ls", "ls_"), ("start", "start"),
        ("stop", "stop"), ("restart", "restart"), ("rm", "rm"), ("logs", "logs"),
        ("shell", "shell"), ("gc", "gc"))},
    **{name: f"parent_agent.commands.info:{name}" for name in
       ("stats", "keys", "version", "doctor", "key", "services")},
    "config": "hal_io.config_cli:parent_group",
    "auth": "parent_agent.commands.auth:auth",
    "sync": "parent_agent.commands.auth:sync",
}  # fmt: skip


class _Group(click.Group):
    """Loads LAZY commands on demand; maps HalErrors to a message and their exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY:
            return super().get_command(ctx, cmd_name)
        module, attr = LAZY[cmd_name].split(":")
        found = getattr(importlib.import_module(module), attr)
        command = found if isinstance(found, click.Command) else found()
        return command if isinstance(command, click.Command) else None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HalError as e:
            click.secho(f"hal-agent: {e}", err=True, fg="red")
            ctx.exit(e.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hal-agent")
def main() -> None:
    """Run and control hal-9000's workers from inside the parent container.

    NAME is a worker's session name or its project's path, matched exactly.
    Exit codes: 0 ok, 1 error, 2 usage, 3 engine unavailable, 5 no such session.
    """


@main.command()
def run() -> None:
    """The parent's main process: dockerd, tmux, dashboard, reconcile loop (PID 1 under tini)."""
    from parent_agent.app.agent import Agent

    try:
        cfg = ctx.config()
    except ConfigError:
        cfg = Config()  # the watcher reports the error; a good save applies
    ctx.setup_logging(cfg.log.level, to_file=True)
    try:
        code = Agent(cfg).run()
    except HalError as e:
        log.critical("%s", e)
        code = e.exit_code
    sys.exit(code)


@main.command(hidden=True)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait.")
def ready(timeout: float) -> None:
    """Wait until `hal-agent run` has its engine and tmux up (exit 1 on timeout)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not paths.READY_FILE.exists():
        if time.monotonic() > deadline:
            raise HalError(
                f"the parent is not ready after {timeout:.0f}s",
                hint="see `docker logs` of the parent and /var/log/hal9000/ in it",
            )
        pause.wait(0.02)


@main.command(hidden=True)
def dashboard() -> None:
    """The live worker list (runs in the dashboard window's top pane)."""
    from parent_agent.commands.dashboard import ConfigFollower, Gather, run_live

    # to a file only: a line on stderr would land inside the frame and scroll it
    ctx.setup_logging("warning", to_file=True, stderr=False, name="dashboard.log")
    gather = Gather(ctx.inner, ctx.ui(), ConfigFollower(paths.config_file(in_parent=True)))
    with contextlib.suppress(KeyboardInterrupt):  # ctrl-c in the pane ends it quietly
        run_live(gather, threading.Event())


def _chunks(stream: object, size: int = 1 << 20) -> Iterator[bytes]:
    read = getattr(stream, "read")  # noqa: B009 - a binary stream, typed loosely by click
    while chunk := read(size):
        yield chunk


@main.command("load-image", hidden=True)
def load_image() -> None:
    """Load an image tar (a `docker save` stream) from stdin into the inner engine."""
    client = ctx.inner()
    with translated("loading the image into the inner engine"):
        lines = client.api.load_image(_chunks(sys.stdin.buffer), quiet=True)  # type: ignore[no-untyped-call]
        for line in lines:
            if "error" in line:
                raise HalError(f"inner engine refused the image: {line['error']}")
            if "stream" in line:
                click.echo(str(line["stream"]).strip())
    # the services image arrives after the loop tried to start the services: start them now
    from hal_common.shared_services import SERVICES_IMAGE, images
    from parent_agent.adapters import services

    cfg = ctx.config()
    if SERVICES_IMAGE in images(cfg.services):
        for error in services.apply(client, cfg.services):
            click.echo(f"warning: {error}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def health(as_json: bool) -> None:
    """Recent errors of the parent's loop, and [parent] changes waiting for a restart."""
    data = status_file.read()
    if as_json:
        click.echo(Health.from_json(data).dumps())
        return
    for key in data.get("restart_needed", []):
        click.echo(f"restart needed: {key} changed (claudy down && claudy)")
    for e in data.get("errors", [])[-10:]:
        click.echo(f"{e['time']} {e['text']}")
    if not data.get("restart_needed") and not data.get("errors"):
        click.echo("no errors")


@main.command("image-id", hidden=True)
@click.argument("image")
def image_id(image: str) -> None:
    """Print IMAGE's id in the inner engine (exit 10 when it is missing)."""
    client = ctx.inner()
    workers.check_image(client, image, None)
    click.echo(client.images.get(image).id)
