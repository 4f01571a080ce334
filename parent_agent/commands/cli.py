"""`hal-agent`: the parent container's entrypoint and the commands typed in its dashboard.

Exit codes: 0 ok, 1 error, 2 usage, 3 engine unavailable, 4 the loop is not running,
5 no such session.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hal_common import __version__
from hal_common.config import Config
from hal_common.errors import ConfigError, HalError, LoopUnavailable
from hal_common.protocol import Health
from hal_io import manners
from parent_agent.adapters import snapshot_file
from parent_agent.commands.context import Parent, pass_parent

if TYPE_CHECKING:
    from parent_agent.adapters.tmux import TmuxUI

log = logging.getLogger("parent_agent")


# Commands live in their modules and are imported when used: `hal-agent spawn` should not
# pay for rich's live display or the config editor (start-up time is on every key press).
LAZY = {
    **{name: f"parent_agent.commands.workers:{attr}" for name, attr in (
        ("spawn", "spawn"), ("attach", "attach"), ("ls", "ls_"), ("start", "start"),
        ("stop", "stop"), ("restart", "restart"), ("rm", "rm"), ("logs", "logs"),
        ("shell", "shell"), ("gc", "gc"), ("send", "send"), ("diff", "diff"))},
    **{name: f"parent_agent.commands.info:{name}" for name in
       ("stats", "keys", "version", "doctor", "key", "services")},
    "config": "hal_io.config_cli:parent_group",
    "auth": "parent_agent.commands.auth:auth",
    "sync": "parent_agent.commands.auth:sync",
    "egress": "parent_agent.commands.egress:egress",
    "ports": "parent_agent.commands.ports:ports",
    "claude": "parent_agent.commands.claude:claude",
    "trust": "parent_agent.commands.trust:trust",
    "identity": "parent_agent.commands.identity:identity_group",
    "repo": "parent_agent.commands.repo:repo_group",
}  # fmt: skip


def inner_workers() -> list[str]:
    """The workers' names (completion): the loop's snapshot, else the inner engine."""
    p = Parent.from_env(os.environ)
    snap = snapshot_file.read(p.layout.status_file)
    if snap is not None:
        return [w.name for w in snap.workers]
    from parent_agent.adapters import workers

    return [w.name for w in workers.list_workers(p.inner())]


class _Group(manners.Group):
    """Loads LAZY commands on demand; maps HalErrors to a message and their exit code."""

    list_workers = staticmethod(inner_workers)  # completion's worker names

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
@manners.global_options
@click.pass_context
def main(context: click.Context) -> None:
    """Run and control hal-9000's workers from inside the parent container.

    NAME is a worker's session name or its project's path, matched exactly.
    Exit codes: 0 ok, 1 error, 2 usage, 3 engine unavailable, 4 the parent's loop is not
    running, 5 no such session.
    """
    manners.check_flags(context)
    if manners.verbosity() and context.invoked_subcommand not in ("run", "dashboard"):
        # (those two set up their own logging, to files)
        logging.basicConfig(level=manners.log_level(), format="%(levelname)s %(name)s: %(message)s")
    if context.obj is None:  # the parent's layout, read from the environment once, here
        context.obj = Parent.from_env(os.environ)


main.add_command(manners.completion_command("hal-agent", "_HAL_AGENT_COMPLETE"))


@main.command()
@pass_parent
def run(p: Parent) -> None:
    """The parent's main process: dockerd, tmux, dashboard, reconcile loop (PID 1 under tini)."""
    try:
        cfg = p.config()
    except ConfigError:
        cfg = Config()  # the watcher reports the error; a good save applies
    p.setup_logging(cfg.log.level, to_file=p.layout.agent_log)
    log.info("hal-agent run: started %.2fs after exec", since_exec())
    ui, fresh = first_frame(p)  # before the loop's imports (docker-py and the rest)
    from parent_agent.app.agent import Agent

    try:
        agent = Agent(cfg, p.layout, ui=ui)
        if fresh:
            agent.adopt_session()
        code = agent.run()
    except HalError as e:
        log.critical("%s", e)
        code = e.exit_code
    sys.exit(code)


@main.command(hidden=True)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait.")
@pass_parent
def ready(p: Parent, timeout: float) -> None:
    """Wait until `hal-agent run` has its engine and tmux up (exit 1 on timeout)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not p.layout.ready_file.exists():
        if time.monotonic() > deadline:
            raise HalError(
                f"the parent is not ready after {timeout:.0f}s",
                hint="`claudy logs --agent` (or --dockerd) says why",
            )
        pause.wait(0.02)


@main.command(hidden=True)
@pass_parent
def dashboard(p: Parent) -> None:
    """The live worker list (runs in the dashboard window's top pane): the loop's snapshot."""
    from parent_agent.commands.dashboard import run_live

    # to a file only: a line on stderr would land inside the frame and scroll it
    p.setup_logging("warning", to_file=p.layout.dashboard_log, stderr=False)
    with contextlib.suppress(KeyboardInterrupt):  # ctrl-c in the pane ends it quietly
        run_live(p.layout.status_file, threading.Event())


def first_frame(p: Parent) -> tuple[TmuxUI, bool]:
    """The tmux session and the dashboard's "starting" frame, drawn before the loop and
    its engine client are even imported (a cold start shows something at once); the UI,
    and whether its session is new, go to the loop. A failure here is the loop's to
    report: it makes the session again."""
    from parent_agent.adapters.dashboard_pane import DashboardPane
    from parent_agent.core.snapshot import Health, Snapshot
    from parent_agent.views.frame import frame

    ui = p.ui()
    try:
        p.layout.run_dir.mkdir(parents=True, exist_ok=True)
        fresh = ui.ensure_session()
    except (HalError, OSError) as e:
        log.warning("tmux is not up yet: %s", e)
        return ui, False
    pane = DashboardPane(p.layout.tmux_sock)
    if (size := pane.size()) is not None:
        starting = Snapshot(now=datetime.now(UTC), health=Health(engine_ok=False, starting=True))
        pane.write(frame(starting, *size))
        log.info("dashboard drawn (starting)")
    pane.close()
    return ui, fresh


def since_exec() -> float:
    """Seconds since this process started (the kernel's clock, in ticks): how long the
    interpreter and the imports took, for the start-up's log lines."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        up = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0
    return round(up - ticks / os.sysconf("SC_CLK_TCK"), 3)


def _chunks(stream: object, size: int = 1 << 20) -> Iterator[bytes]:
    read = getattr(stream, "read")  # noqa: B009 - a binary stream, typed loosely by click
    while chunk := read(size):
        yield chunk


@main.command("load-image", hidden=True)
@pass_parent
def load_image(p: Parent) -> None:
    """Load an image tar (a `docker save` stream) from stdin into the inner engine."""
    engine = p.inner()
    loaded: set[str] = set()
    for line in engine.load_image(_chunks(sys.stdin.buffer)):
        click.echo(line)
        loaded.add(line.removeprefix("Loaded image: "))
    # a service's image arrives after the loop tried to start the services: the loop
    # starts them now (it alone creates service containers); wait for its answer
    from hal_common.shared_services import images
    from parent_agent.adapters import control as control_socket
    from parent_agent.core.control import ReconcileServices

    if loaded & images(p.config().services):
        try:
            answer = control_socket.ask(p.layout.control_socket, ReconcileServices())
        except LoopUnavailable as e:
            raise LoopUnavailable(
                f"the image is loaded, but its services cannot be started: {e.message}",
                hint="they start when hal-agent run does",
            ) from None
        for error in answer.errors if answer.ok else (answer.error,):
            click.echo(f"warning: {error}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_parent
def health(p: Parent, as_json: bool) -> None:
    """Recent errors of the parent's loop, and [parent] changes waiting for a restart."""
    snap = snapshot_file.read(p.layout.status_file)
    health = Health(snap.errors, snap.restart_needed) if snap else Health()
    data = health.to_json()
    if as_json:
        click.echo(health.dumps())
        return
    for key in data.get("restart_needed", []):
        click.echo(f"restart needed: {key} changed (claudy down && claudy)")
    for e in data.get("errors", [])[-10:]:
        click.echo(f"{e['time']} {e['text']}")
    if not data.get("restart_needed") and not data.get("errors"):
        click.echo("no errors")
