"""`claudy`: the tiny host command. Makes sure the parent runs, then hands the terminal over."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from hal_common import __version__
from hal_common.errors import HalError, UsageError
from hal_common.projects import resolve_project
from hal_common.protocol import PARENT_ABSENT, PARENT_RESTARTING, PARENT_RUNNING, Health, WorkerRow
from hal_common.services_build import host_line
from hal_common.tasks import check_name, task_image, task_of
from hal_io import manners
from hal_io.config_cli import config_group
from host_shim.adapters import background, images
from host_shim.adapters.engine import ContainerHandle
from host_shim.adapters.parent import find_parent, restart_needed_by_env, running_parent
from host_shim.adapters.parent_client import ParentClient, ParentCommandFailed
from host_shim.adapters.terminal import find_docker_cli, hand_over
from host_shim.commands import auth as cli_auth
from host_shim.commands import engines as engine_rows
from host_shim.commands import gitsync as cli_gitsync
from host_shim.commands import identity as cli_identity
from host_shim.commands.claude import claude_group
from host_shim.commands.context import Host, current_host, load_ctx, pass_host, stderr_console
from host_shim.commands.doctor import run_checks
from host_shim.commands.forwarded import Forwarded, forward, parent_workers
from host_shim.commands.launch import (
    fast_session,
    hint_stamps,
    prepare,
    project_image,
    remember,
)
from host_shim.commands.uninstall import uninstall
from host_shim.core import fastpath, handover
from host_shim.core.hint import FORWARDED as FORWARDED  # re-exported: tests, callers
from host_shim.core.hint import TOP_OPTIONS
from host_shim.core.parent_spec import PARENT_LAYOUT, RESTART_NEEDED, STOP_TIMEOUT, volume_names

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

log = logging.getLogger("host_shim")


class _Group(manners.Group):
    """`claudy [DIR]` by default; HalErrors become a message and their exit code."""

    list_workers = staticmethod(parent_workers)  # completion's worker names

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """A word that is no command opens a directory (the hidden `open`), when it is one,
        or looks like a path (`./x`, `a/b`: that one's error says "no such directory");
        any other word is no command."""
        n = _leading(args)
        word = args[n] if n < len(args) else None
        if word is None:
            if not ctx.resilient_parsing:  # completing `claudy `: the commands (and dirs)
                args = [*args, "open"]
        elif word not in TOP_OPTIONS and (word == "open" or word not in self.commands):
            if not (word.startswith("-") or ctx.resilient_parsing or _a_directory(word)):
                raise self.no_such_command(ctx, word, nor=" or directory")
            args = [*args[:n], "open", *args[n:]]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[OPTIONS]", "[DIR | COMMAND [ARGS]...]"]

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """The commands, and the directories (`claudy DIR`)."""
        from click.shell_completion import CompletionItem

        found = super().shell_complete(ctx, incomplete)
        return found if incomplete.startswith("-") else [*found, CompletionItem(incomplete, "dir")]

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HalError as e:
            err = ctx.obj.err if isinstance(ctx.obj, Host) else stderr_console()
            # escaped: config messages hold [section]s; soft_wrap: paths stay on one line
            err.print(f"[red]claudy:[/] {escape(e.message)}", soft_wrap=True)
            if e.hint:
                err.print(f"  [dim]hint:[/] {escape(e.hint)}", soft_wrap=True)
            ctx.exit(e.exit_code)


# hal-agent commands that claudy passes on to the parent, so they work from the host too
# (FORWARDED), and the top options: in core/hint, which the quick entry reads too.


ENGINE_OPTIONS = ("--engine", "--context")


def _leading(args: list[str]) -> int:
    """How many of `args`' first words are global options (`--engine URL` two of them)."""
    n = 0
    while n < len(args):
        if args[n] in manners.GLOBAL_FLAGS or args[n].startswith(("--engine=", "--context=")):
            n += 1
        elif args[n] in ENGINE_OPTIONS:
            n += 2
        else:
            break
    return min(n, len(args))


def _a_directory(word: str) -> bool:
    return os.path.isdir(word) or word.startswith((".", "~")) or os.sep in word


class _OpenContext(click.Context):
    """`claudy [DIR]` is the hidden `open`: its usage and errors say `claudy`, not its name."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else "claudy"


class _Open(click.Command):
    context_class = _OpenContext


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claudy")
@manners.global_options
@click.option(
    "--engine",
    metavar="URL",
    default=None,
    help="The Docker engine: unix:///path, ssh://user@host[:port], tcp://host:port "
    "(DOCKER_HOST; [parent] engine).",
)
@click.option(
    "--context",
    "context_name",
    metavar="NAME",
    default=None,
    help="The Docker context whose engine to use (DOCKER_CONTEXT).",
)
@click.pass_context
def main(ctx: click.Context, engine: str | None, context_name: str | None) -> None:
    """Claude Code per project, each in its own container, one tmux away.

    `claudy [DIR]` opens DIR's session (default: the current directory); `claudy -d DIR`
    starts it without attaching. The worker commands (ls, logs, stats …) are hal-agent's,
    run in the parent.
    """
    manners.check_flags(ctx)
    logging.basicConfig(level=manners.log_level(), format="%(levelname)s %(name)s: %(message)s")
    try:
        ctx.obj = Host.from_env(os.environ, engine, context_name)
    except HalError as e:
        stderr_console().print(f"[red]claudy:[/] {escape(e.message)}", soft_wrap=True)
        if e.hint:
            stderr_console().print(f"  [dim]hint:[/] {escape(e.hint)}", soft_wrap=True)
        ctx.exit(e.exit_code)


main.add_command(config_group(lambda: current_host().layout.config_file))
main.add_command(cli_auth.auth_group)
main.add_command(cli_auth.sync)
main.add_command(cli_identity.identity_group)
main.add_command(claude_group)
main.add_command(manners.completion_command("claudy", "_CLAUDY_COMPLETE", dirs_with_words=True))
for _name in FORWARDED:
    main.add_command(Forwarded(_name))
main.add_command(uninstall)
main.add_command(cli_gitsync.pull)
main.add_command(cli_gitsync.push)


@main.command("open", hidden=True, cls=_Open)
@click.argument("directory", default=".", type=click.Path(), shell_complete=manners.complete_dir)
@click.option("-d", "--detach", is_flag=True, help="Start the session, don't attach.")
@click.option(
    "--task",
    default=None,
    metavar="NAME",
    help="A task: a worktree of DIR's repository on branch hal/NAME, with its own worker.",
)
@click.option(
    "--from", "from_ref", default=None, metavar="REF", help="With --task: start from REF (HEAD)."
)
@pass_host
def open_(host: Host, directory: str, detach: bool, task: str | None, from_ref: str | None) -> None:
    """Open DIRECTORY's session (the default command); with --task NAME, that task's."""
    before = hint_stamps(host.layout.config_file, host.env)  # the quick entry's (quick.py)
    c = load_ctx(host)
    project = resolve_project(directory, c.policy())  # a pre-check: the parent decides
    if from_ref is not None and task is None:
        raise UsageError("--from goes with --task", hint="claudy DIR --task NAME --from REF")
    if task is not None:
        check_name(task)  # a pre-check too
    engine = c.engine()
    if not detach and not sys.stdin.isatty():
        raise UsageError("claudy needs a terminal to attach", hint="use claudy -d DIR in scripts")
    if c.cfg.parent.projects == "git":
        cli_gitsync.top_of(project)  # only a repository travels: said before any build
    git_only = c.cfg.parent.projects == "git"  # every project a task (hal_common/gitsync.py)
    session = None if task or git_only else fast_session(c, engine, project, detach, before)
    if session is not None:
        if detach:
            click.echo(session)
            return
        cli = find_docker_cli(host.env)
        argv = fastpath.attach_argv(
            cli, c.cfg.parent.name, session, host.term, os.getpid(), PARENT_LAYOUT
        )
        hand_over(argv[0], handover.on_engine(argv, c.host.cli_args()))
    wanted = project_image(c, project)  # a profile its .hal9000.toml asks for
    if wanted is None and (git_only or task is not None or task_of(project) is not None):
        wanted = task_image(c.cfg.worker.image)  # git inside: the standard image
    agent, image_id = prepare(c, engine, wanted)
    by_git = cli_gitsync.by_git(c, agent, project)
    if by_git and wanted is None and task_image(c.cfg.worker.image) is not None:
        wanted = task_image(c.cfg.worker.image)  # detected: a task after all
        agent, image_id = prepare(c, engine, wanted)
    if wanted is None and not by_git:  # the hint holds the config's worker image
        remember(c, engine, agent.parent, image_id, before, project, say=False)  # said if older
    cli_auth.first_run(host, agent, host.err)
    cli_identity.send(host, agent, host.err)
    if by_git:  # the repository travels; its worker is a task on the parent's copy
        sent = cli_gitsync.send(c, agent, project, task, from_ref)
        project, task, from_ref = sent.path, sent.task, sent.from_ref
    if detach:
        try:
            click.echo(agent.spawn(project, image_id, task, from_ref))
        except ParentCommandFailed as e:
            if task is None:
                raise
            # the parent decides on a task (is DIR in a repository, is the branch free):
            # its refusal keeps its words and its exit code
            click.echo(e.output.strip(), err=True)
            sys.exit(e.code)
        return
    cli = find_docker_cli(host.env)
    on = c.host.cli_args()  # -H URL / --context NAME: the engine the parent is on
    if task is not None:
        name = c.cfg.parent.name
        argv = handover.spawn_argv(cli, name, project, image_id, host.term, task, from_ref)
        hand_over(cli, handover.on_engine(argv, on))
    argv = handover.attach_argv(cli, c.cfg.parent.name, project, image_id, host.term)
    hand_over(cli, handover.on_engine(argv, on))


@main.command()
@click.option("--no-cache", is_flag=True, help="Rebuild every layer.")
@pass_host
def build(host: Host, no_cache: bool) -> None:
    """Build (or rebuild) the worker and parent images."""
    c = load_ctx(host)
    images.ensure_images(c.engine(), c.cfg, c.progress, host.env, force=True, nocache=no_cache)


def _workers(parent: ContainerHandle) -> tuple[WorkerRow, ...]:
    try:
        return ParentClient(parent).ls(include_stopped=True)
    except ParentCommandFailed:
        return ()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--all",
    "all_engines",
    is_flag=True,
    help="The parent on every engine claudy knows of (config, contexts, DOCKER_HOST).",
)
@pass_host
def status(host: Host, as_json: bool, all_engines: bool) -> None:
    """The parent's state and its workers; with --all, each engine's parent."""
    c = load_ctx(host)
    if all_engines:
        found = engine_rows.rows(c)
        if as_json:
            doc = {"engines": [r.to_json(c.cfg.parent.name) for r in found]}
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo("\n".join(engine_rows.text(found, c.cfg.parent.name)))
        return
    engine = c.engine()
    parent = find_parent(engine, c.cfg.parent.name)
    state = parent.status if parent else PARENT_ABSENT
    running = parent is not None and state == PARENT_RUNNING
    rows = _workers(parent) if parent is not None and running else ()
    health = Health()
    restart_needed: list[str] = []
    if parent is not None and running:
        with contextlib.suppress(ParentCommandFailed):  # no health: none to say
            health = ParentClient(parent).health()
        # [parent] keys changed in the file (the parent's loop saw them), and the host's
        # HAL9000_* overrides the parent was not created with
        restart_needed = [*health.restart_needed, *restart_needed_by_env(parent, host.env, c.cfg)]
    paths = background.Paths.of(host.layout, host.env)
    building = host_line(background.read_record(paths), background.running(paths))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "engine": {"url": engine.url, "origin": c.host.choice().origin},
                    "parent": {
                        "name": c.cfg.parent.name,
                        "state": state,
                        "restart_needed": restart_needed,
                    },
                    "services_build": building,
                    "workers": [r.to_json() for r in rows],
                },
                indent=2,
            )
        )
        return
    on = "" if c.host.choice().origin == "default" else f" on {engine.url}"
    click.echo(f"parent {c.cfg.parent.name}{on}: {state}")
    if building:  # the services image's background build (see launch.prepare)
        click.echo(f"  services: {building}")
    for key in restart_needed:
        click.echo(f"  {RESTART_NEEDED.format(key=key)}")
    for r in rows:
        click.echo(f"  {r.name:34} {r.state:9} {r.project}")
    if state == PARENT_RUNNING and not rows:
        click.echo("  no workers")


@main.command()
@click.argument("name", required=False, shell_complete=manners.complete_worker)
@click.option("--yes", "-y", is_flag=True, help="Don't ask, even when workers run.")
@click.option("--timeout", type=int, help="With NAME: seconds before SIGKILL (10).")
@pass_host
def stop(host: Host, name: str | None, yes: bool, timeout: int | None) -> None:
    """Stop the parent (and, in order, its workers); volumes and containers stay.

    With NAME, stop that worker only (`hal-agent stop NAME` in the parent).
    """
    if name is not None:
        forward(host, ["stop", name, *(["--timeout", str(timeout)] if timeout else [])])
        return
    c = load_ctx(host)
    parent = find_parent(c.engine(), c.cfg.parent.name)
    if parent is None or parent.status != PARENT_RUNNING:
        click.echo("the parent is not running")
        return
    running = [r for r in _workers(parent) if r.state == "running"]
    if running and not yes:
        names = ", ".join(r.name for r in running)
        if not click.confirm(f"{len(running)} worker(s) running ({names}). Stop them all?"):
            raise click.Abort()
    parent.stop(timeout=STOP_TIMEOUT, what="stopping the parent")
    click.echo("stopped")


@main.command()
@click.option(
    "--volumes", is_flag=True, help="Also delete the volumes (inner images, Claude home, data)."
)
@click.option("--yes", "-y", is_flag=True, help="Don't ask.")
@pass_host
def down(host: Host, volumes: bool, yes: bool) -> None:
    """Remove the parent container; its volumes stay unless --volumes."""
    c = load_ctx(host)
    engine = c.engine()
    parent = find_parent(engine, c.cfg.parent.name)
    if volumes and not yes:
        click.confirm("Delete the Claude home, shared data and inner images too?", abort=True)
    what = "removing the parent"
    if parent is not None:
        if parent.status in (PARENT_RUNNING, PARENT_RESTARTING):
            parent.stop(timeout=STOP_TIMEOUT, what=what)
        parent.remove(force=True, what=what)
        click.echo(f"removed {c.cfg.parent.name}")
    if volumes:
        for name in volume_names(c.cfg.parent.name).values():
            if engine.remove_volume(name, what):
                click.echo(f"removed volume {name}")


@main.command()
@click.argument("name", shell_complete=manners.complete_worker)
@click.argument("text", nargs=-1)
@click.option("--no-enter", is_flag=True, help="Type TEXT without pressing Enter after it.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="A tmux key name to press after TEXT (Enter, Escape, Down, …); repeatable.",
)
@pass_host
def send(
    host: Host, name: str, text: tuple[str, ...], no_enter: bool, keys: tuple[str, ...]
) -> None:
    """Type TEXT into worker NAME's Claude as from the keyboard, then Enter.

    NAME is a session name or a project directory. `claudy send myproj-1a2b3c4d yes`;
    a text starting with a dash goes after `--`.
    """
    c = load_ctx(host)
    parent = running_parent(c.engine(), c.cfg.parent.name)
    # a project directory is the parent's path too (roots are mounted at the same place)
    target = os.path.realpath(name) if os.path.isdir(name) else name
    try:
        out = ParentClient(parent).send(target, " ".join(text), not no_enter, keys)
    except ParentCommandFailed as e:
        click.echo(e.output.strip(), err=True)  # hal-agent's own message and hint
        sys.exit(e.code)
    if out:
        click.echo(out)


@main.command()
@pass_host
def doctor(host: Host) -> None:
    """Check the engine, privileges, images and roots; say what is wrong and how to fix it."""
    sys.exit(run_checks(host))
