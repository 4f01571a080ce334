"""`claudy`: the tiny host command. Makes sure the parent runs, then hands the terminal over."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass

import click
import docker
from docker.models.containers import Container
from rich.console import Console
from rich.markup import escape

from hal_common import __version__, paths
from hal_common.config import Config, load_config
from hal_common.errors import HalError, UsageError
from hal_common.naming import container_name, session_name
from hal_common.projects import check_roots, expand_roots, resolve_project
from hal_common.shared_services import SERVICES_IMAGE
from hal_common.shared_services import images as service_images
from hal_io.config_cli import host_group
from hal_io.engine import connect, run_in, translated
from host_shim.adapters import fastpath, images
from host_shim.adapters.parent import (
    HostUser,
    ensure_parent,
    find_parent,
    running_parent,
    volume_names,
)
from host_shim.commands import auth as cli_auth
from host_shim.core.build_context import SOURCE_LABEL, Recipe, context_dir, source_hash

log = logging.getLogger("host_shim")
err = Console(stderr=True, highlight=False)

ENGINE_HINT = (
    "install and start Docker (Debian/Ubuntu: sudo apt-get install docker.io), "
    "and make sure you may use it (sudo usermod -aG docker $USER, then log in again); "
    "claudy doctor says more"
)


@dataclass
class Ctx:
    cfg: Config
    roots: tuple[str, ...]
    config_dir: str

    def client(self) -> docker.DockerClient:
        return connect(os.environ.get("DOCKER_HOST"), "the Docker engine", ENGINE_HINT)


def host_user() -> HostUser:
    """The invoking user: under sudo, the user who ran sudo."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and os.environ.get("SUDO_UID"):
        return HostUser(int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", "0")))
    return HostUser(uid, gid)


def load_ctx() -> Ctx:
    config_dir = paths.host_config_dir()
    cfg = load_config(paths.config_file(in_parent=False))
    for w in cfg.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")
    roots = expand_roots(cfg.parent.roots, os.path.expanduser("~"))
    check_roots(roots)
    return Ctx(cfg, roots, str(config_dir))


class _Group(click.Group):
    """`claudy [DIR]` by default; HalErrors become a message and their exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and (args[0] in FORWARDED or (args[0] == "stop" and _names_a_worker(args[1:]))):
            args = ["forward", *args]
        elif not args or (args[0] not in self.commands and args[0] not in TOP_OPTIONS):
            args = ["open", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HalError as e:
            # escaped: config messages hold [section]s; soft_wrap: paths stay on one line
            err.print(f"[red]claudy:[/] {escape(e.message)}", soft_wrap=True)
            if e.hint:
                err.print(f"  [dim]hint:[/] {escape(e.hint)}", soft_wrap=True)
            ctx.exit(e.exit_code)


# hal-agent commands that claudy passes on to the parent, so they work from the host too.
FORWARDED = ("ls", "spawn", "attach", "start", "restart", "rm", "logs", "stats", "shell",
             "keys", "gc", "version")  # fmt: skip
TOP_OPTIONS = ("--help", "-h", "--version")


def _names_a_worker(rest: list[str]) -> bool:
    """`claudy stop NAME` stops one worker; `claudy stop [--yes]` stops the parent."""
    return any(not a.startswith("-") for a in rest)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claudy")
def main() -> None:
    """Claude Code per project, each in its own container, one tmux away.

    `claudy [DIR]` opens DIR's session (default: the current directory).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


main.add_command(host_group())
main.add_command(cli_auth.auth_group)
main.add_command(cli_auth.sync)


def prepare(c: Ctx, client: docker.DockerClient) -> tuple[Container, str]:
    """Images built, parent running and ready, worker image inside: (parent, worker image id)."""
    images.ensure_images(client, c.cfg, err)
    os.makedirs(c.config_dir, exist_ok=True)
    parent, changed = ensure_parent(client, c.cfg, c.roots, c.config_dir, host_user())
    if changed:
        err.print(f"[green]parent {c.cfg.parent.name} is up[/]")
    stale_parent(client, parent, c.cfg)
    image_id = images.ensure_inner_image(client, parent, c.cfg.worker.image, err)
    for shared in sorted(service_images(c.cfg.services) & {SERVICES_IMAGE}):
        images.ensure_inner_image(client, parent, shared, err)  # the services start on load
    return parent, image_id


def stale_parent(client: docker.DockerClient, parent: Container, cfg: Config) -> None:
    """Say so when the running parent is not what this checkout would build."""
    with translated("checking the parent's image"):
        running = parent.image
        current = (
            client.images.get(cfg.parent.image).id
            if images.have_image(client, cfg.parent.image)
            else None
        )
    built_from = (running.labels or {}).get(SOURCE_LABEL) if running is not None else None
    wanted: str | None
    try:
        wanted = source_hash(context_dir(), Recipe(cfg.parent.image, "Dockerfile.parent", None))
    except HalError:  # not run from a clone: only the image id can tell
        wanted = built_from
    if (running is not None and current is not None and running.id != current) or (
        built_from != wanted
    ):
        err.print(
            "[yellow]the parent runs an older hal-9000; `claudy down && claudy` rebuilds and "
            "restarts it (workers stop, volumes and the Claude home stay)[/]"
        )


@main.command("open", hidden=True)
@click.argument("directory", default=".", type=click.Path())
@click.option("-d", "--detach", is_flag=True, help="Start the session, don't attach.")
def open_(directory: str, detach: bool) -> None:
    """Open DIRECTORY's session (the default command)."""
    c = load_ctx()
    project = resolve_project(directory, c.roots)
    client = c.client()
    if not detach and not sys.stdin.isatty():
        raise UsageError("claudy needs a terminal to attach", hint="use claudy -d DIR in scripts")
    if _fast(c, client, project, detach):
        return
    parent, image_id = prepare(c, client)
    cli_auth.first_run(client, parent, err)
    if detach:
        argv = ["hal-agent", "spawn", project, "--no-attach", "--image-id", image_id]
        code, out = run_in(parent, argv, "spawning the worker")
        if code != 0:
            raise HalError(out.strip() or f"spawn failed with code {code}")
        click.echo(out.strip())
        return
    docker_cli = _docker_cli()
    argv = [docker_cli, "exec", "-it", "--detach-keys", "ctrl-],ctrl-]",
            "-e", f"TERM={os.environ.get('TERM', 'xterm-256color')}",
            c.cfg.parent.name, "hal-agent", "attach", project, "--image-id", image_id]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(docker_cli, argv)  # noqa: S606 - the terminal is handed to docker exec


def _fast(c: Ctx, client: docker.DockerClient, project: str, detach: bool) -> bool:
    """The reattach fast path (see fastpath.py); False when the full path must run."""
    parent = find_parent(client, c.cfg.parent.name)
    if parent is None or parent.status != "running":
        return False
    try:
        with translated("inspecting the worker image"):
            host_image = str(client.images.get(c.cfg.worker.image).id)
    except HalError:
        return False
    session = session_name(project)
    found = fastpath.probe(parent, c.cfg.worker.image, container_name(session))
    if not fastpath.attachable(found, host_image, session, need_window=not detach):
        return False
    stale_parent(client, parent, c.cfg)  # cheap (an image lookup, a source hash): say upgrades
    if detach:
        click.echo(session)
        return True
    term = os.environ.get("TERM", "xterm-256color")
    argv = fastpath.attach_argv(_docker_cli(), c.cfg.parent.name, session, term)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - the terminal is handed to docker exec


@main.command(
    hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def forward(args: tuple[str, ...]) -> None:
    """Run `hal-agent ARGS` in the parent (claudy ls, claudy stats, claudy stop NAME …)."""
    c = load_ctx()
    running_parent(c.client(), c.cfg.parent.name)
    # host paths are the parent's paths too (roots are mounted at the same place)
    passed = [os.path.realpath(a) if os.path.isdir(a) else a for a in args]
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    argv = ["docker", "exec", *(["-it"] if tty else ["-i"]), "--detach-keys", "ctrl-],ctrl-]",
            "-e", f"TERM={os.environ.get('TERM', 'xterm-256color')}",
            c.cfg.parent.name, "hal-agent", *passed]  # fmt: skip
    sys.stdout.flush()
    os.execvp(_docker_cli(), argv)  # noqa: S606 - the terminal is handed to docker exec


def _docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise HalError("the docker command is not on PATH", hint="install the docker client")
    return found


@main.command()
@click.option("--no-cache", is_flag=True, help="Rebuild every layer.")
def build(no_cache: bool) -> None:
    """Build (or rebuild) the worker and parent images."""
    c = load_ctx()
    images.ensure_images(c.client(), c.cfg, err, force=True, nocache=no_cache)


def _workers(parent: Container) -> list[dict[str, object]]:
    code, out = run_in(parent, ["hal-agent", "ls", "--json", "--all"], "listing workers")
    if code != 0:
        return []
    rows: list[dict[str, object]] = json.loads(out or "[]")
    return rows


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """The parent's state and its workers."""
    c = load_ctx()
    parent = find_parent(c.client(), c.cfg.parent.name)
    state = parent.status if parent else "absent"
    rows = _workers(parent) if parent and state == "running" else []
    health: dict[str, list[str]] = {"restart_needed": [], "errors": []}
    if parent and state == "running":
        code, out = run_in(parent, ["hal-agent", "health", "--json"], "asking the parent")
        health = json.loads(out) if code == 0 else health
    if as_json:
        click.echo(json.dumps({"parent": {"name": c.cfg.parent.name, "state": state,
                                          "restart_needed": health["restart_needed"]},
                               "workers": rows}, indent=2))  # fmt: skip
        return
    click.echo(f"parent {c.cfg.parent.name}: {state}")
    for key in health["restart_needed"]:
        click.echo(f"  restart needed: {key} changed (claudy down && claudy)")
    for r in rows:
        click.echo(f"  {r['name']:34} {r['state']:9} {r['project']}")
    if state == "running" and not rows:
        click.echo("  no workers")


@main.command()
@click.option("--yes", "-y", is_flag=True, help="Don't ask, even when workers run.")
def stop(yes: bool) -> None:
    """Stop the parent (and, in order, its workers); volumes and containers stay."""
    c = load_ctx()
    parent = find_parent(c.client(), c.cfg.parent.name)
    if parent is None or parent.status != "running":
        click.echo("the parent is not running")
        return
    running = [r for r in _workers(parent) if r["state"] == "running"]
    if running and not yes:
        names = ", ".join(str(r["name"]) for r in running)
        if not click.confirm(f"{len(running)} worker(s) running ({names}). Stop them all?"):
            raise click.Abort()
    with translated("stopping the parent"):
        parent.stop(timeout=60)
    click.echo("stopped")


@main.command()
@click.option(
    "--volumes", is_flag=True, help="Also delete the volumes (inner images, Claude home, data)."
)
@click.option("--yes", "-y", is_flag=True, help="Don't ask.")
def down(volumes: bool, yes: bool) -> None:
    """Remove the parent container; its volumes stay unless --volumes."""
    c = load_ctx()
    client = c.client()
    parent = find_parent(client, c.cfg.parent.name)
    if volumes and not yes:
        click.confirm("Delete the Claude home, shared data and inner images too?", abort=True)
    with translated("removing the parent"):
        if parent is not None:
            if parent.status in ("running", "restarting"):
                parent.stop(timeout=60)
            parent.remove(force=True)
            click.echo(f"removed {c.cfg.parent.name}")
        if volumes:
            for name in volume_names(c.cfg.parent.name).values():
                try:
                    client.volumes.get(name).remove()
                    click.echo(f"removed volume {name}")
                except docker.errors.NotFound:
                    pass


@main.command()
def doctor() -> None:
    """Check the engine, privileges, images and roots; say what is wrong and how to fix it."""
    from host_shim.commands.doctor import run_checks

    sys.exit(run_checks(err))
