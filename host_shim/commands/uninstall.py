"""`claudy uninstall`: list what hal-9000 made, ask, remove it (plan: core/uninstall.py)."""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from hal_common.config import Config, load_config
from hal_common.errors import EngineUnavailable, HalError, UsageError
from host_shim.adapters import uninstall as world
from host_shim.adapters.engine import HostEngine
from host_shim.commands.context import Host, pass_host
from host_shim.core.uninstall import describe, plan

ELSEWHERE = (
    "claudy itself was not installed by install.sh (no manifest in {prefix}): remove it the "
    "way you installed it (pipx uninstall hal-9000, uv tool uninstall hal-9000, or pip "
    "uninstall hal-9000 in its venv)"
)


def _parent_name(host: Host) -> str:
    """The config's parent name (its volumes outlive `claudy down`); a broken config must not
    stop an uninstall: then the default's."""
    try:
        return load_config(host.layout.config_file, host.env).parent.name
    except HalError:
        return Config().parent.name


def _engine(host: Host) -> HostEngine | None:
    try:
        return host.engine()
    except EngineUnavailable as e:
        host.err.print(
            f"[yellow]warning:[/] {escape(e.message)}: its containers, images and volumes "
            "are not looked at (start it and run claudy uninstall again for them)",
            soft_wrap=True,
        )
        return None


@click.command()
@click.option("--images", is_flag=True, help="Also remove the images claudy built.")
@click.option(
    "--volumes", is_flag=True, help="Also remove the volumes (Claude home, data, inner images)."
)
@click.option("--config", "config_dir", is_flag=True, help="Also remove the config directory.")
@click.option("--yes", "-y", is_flag=True, help="Don't ask.")
@pass_host
def uninstall(host: Host, images: bool, volumes: bool, config_dir: bool, yes: bool) -> None:
    """Remove what hal-9000 made: the parent containers (and their workers), the caches and
    logs, and what install.sh installed (claudy's venv, its link, completion, the PATH line).

    Lists it all and asks first; images, volumes and the config directory stay unless asked
    for.
    """
    engine = _engine(host)
    found, warnings = world.find(engine, host.layout, host.env, _parent_name(host))
    for w in warnings:
        host.err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    p = plan(found, images, volumes, config_dir)
    if p.empty():
        click.echo("nothing of hal-9000's to remove")
    else:
        click.echo("claudy uninstall will remove:")
        for line in describe(p):
            click.echo(line)
    for k in p.kept:
        click.echo(f"  kept: {k}")
    if found.manifest_path is None:
        click.echo(ELSEWHERE.format(prefix=world.manifest_path(host.env).parent))
    if p.empty():
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "claudy uninstall asks before it removes anything, and there is no terminal "
                "to ask on",
                hint="run it in a terminal, or add --yes to remove the above without asking",
            )
        if not click.confirm("Remove these?", default=False):
            click.echo("nothing removed")
            return
    failed = world.remove(engine, p, click.echo)
    for f in failed:
        host.err.print(f"[red]claudy:[/] not removed: {escape(f)}", soft_wrap=True)
    if failed:
        sys.exit(1)
    if p.venv:
        click.echo("claudy is uninstalled (open shells may still have it in their hash: hash -r)")
