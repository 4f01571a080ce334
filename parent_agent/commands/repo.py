"""`hal-agent repo receive|bundle|info`: projects that travel by git (`app/repos.py`).
claudy runs them over exec: a bundle on stdin, a bundle on stdout, never a path or a byte
of the repository in argv."""

from __future__ import annotations

import json
import sys

import click

from hal_common import gitsync
from parent_agent.app import repos
from parent_agent.commands.context import Parent, pass_parent


@click.group("repo")
def repo_group() -> None:
    """Repositories that came by git (projects the parent's engine cannot see)."""


@repo_group.command("receive")
@click.argument("key")
@click.option("--branch", required=True, help="The branch the bundle holds (the tasks' base).")
@click.option(
    "--max-bytes",
    type=click.IntRange(1),
    default=gitsync.BUNDLE_MAX,
    show_default=True,
    help="Refuse a bigger bundle.",
)
@pass_parent
def receive(p: Parent, key: str, branch: str, max_bytes: int) -> None:
    """A bundle of BRANCH on stdin into the repository KEY: verified, fast-forward only."""
    got = repos.receive(p.layout, key, branch, sys.stdin.buffer, max_bytes)
    click.echo(got.words())


@repo_group.command("bundle")
@click.argument("key")
@click.argument("name")
@click.option(
    "--have",
    multiple=True,
    metavar="COMMIT",
    help="A commit the receiver holds: left out of the bundle (repeatable).",
)
@pass_parent
def bundle(p: Parent, key: str, name: str, have: tuple[str, ...]) -> None:
    """Task NAME's branch hal/NAME of repository KEY, as a git bundle on stdout (nothing
    when its tip is one of the --have commits)."""
    if sys.stdout.isatty():
        raise click.UsageError("the bundle is binary: redirect stdout to a file")
    repos.bundle(p.layout, key, name, sys.stdout.buffer, have)


@repo_group.command("info")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_parent
def info(p: Parent, key: str, as_json: bool) -> None:
    """What the parent holds of repository KEY: its base branch and its tasks' branches."""
    found = repos.info(p.layout, key)
    if as_json:
        click.echo(json.dumps(found.json()))
        return
    if not found.exists:
        click.echo(f"{key}: not here")
        return
    click.echo(f"{found.path}: base {found.base or '?'} at {found.base_commit[:12] or '?'}")
    for name, commit in found.tasks:
        click.echo(f"  hal/{name} {commit[:12]}")
