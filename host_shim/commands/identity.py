"""`claudy identity …`: your git identity and, per project, the SSH agent and a GitHub token,
into the parent (over an exec's stdin, never env or argv)."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.markup import escape

from hal_common.errors import HalError
from hal_common.identity import IdentityError, check_token
from hal_io import manners
from host_shim.adapters import identity
from host_shim.adapters.parent import running_parent
from host_shim.adapters.parent_client import ParentClient, ParentCommandFailed
from host_shim.commands.context import Host, load_ctx, pass_host


def _parent(host: Host) -> ParentClient:
    c = load_ctx(host)
    return ParentClient(running_parent(c.engine(), c.cfg.parent.name))


@click.group("identity", cls=manners.Group)
def identity_group() -> None:
    """Your git identity in the workers; the SSH agent and a GitHub token, per project.

    Which projects get the SSH agent and the token: `[identity] ssh_agent` and
    `github_token` in your config (docs/config.md).
    """


@identity_group.command("github-token")
@click.option("--remove", is_flag=True, help="Forget the token (in every worker too).")
@pass_host
def github_token(host: Host, remove: bool) -> None:
    """Import a GitHub token: from stdin when it is not a terminal
    (`gh auth token | claudy identity github-token`), else from `gh auth token`.

    Only workers of the projects in `[identity] github_token` get it, through git's
    credential helper for https://github.com.
    """
    parent = _parent(host)
    if remove:
        click.echo(parent.remove_github_token())
        return
    try:
        if sys.stdin.isatty():
            token = identity.github_token_from_gh(host.env)
        else:
            token = check_token(sys.stdin.read(4096), "stdin")
    except IdentityError as e:
        raise HalError(e.message, hint=e.hint) from None
    click.echo(parent.import_github_token(token))


@identity_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (no secret either).")
@pass_host
def status(host: Host, as_json: bool) -> None:
    """What the workers get: the git identity, the GitHub token (imported or not, never
    shown), the SSH agent, and the projects opted in to each; and what the host has."""
    c = load_ctx(host)
    found = identity.git_identity(host.env)
    sock = identity.wanted_ssh_agent(c.cfg, host.env)
    doc = ParentClient(running_parent(c.engine(), c.cfg.parent.name)).identity_status()
    host_doc = {
        "git": None
        if found.identity is None
        else {"name": found.identity.name, "email": found.identity.email},
        "note": found.note or None,
        "ssh_auth_sock": sock or None,
    }
    if as_json:
        click.echo(json.dumps({"parent": doc, "host": host_doc}, indent=2))
        return
    git = doc["git"]
    click.echo(f"parent: git identity {git['name'] or '(no name)'} <{git['email'] or ''}>")
    tok = doc["github_token"]
    click.echo(f"  GitHub token: {'imported' if tok['present'] else 'none'}")
    click.echo(f"  SSH agent: {'from the host' if doc['ssh_agent'] else 'none'}")
    for key, what in (("ssh_agent", "SSH agent"), ("github_token", "GitHub token")):
        dirs = doc["opted_in"][key]
        click.echo(f"  {what} for: {', '.join(dirs) if dirs else 'no project'}")
    if found.note:
        click.echo(f"host: {found.note}")


def send(host: Host, parent: ParentClient, console: Console) -> None:
    """On `claudy`'s full path: the host's git name and email, to the parent (it rewrites
    the workers' gitconfig when they changed). Never fatal: git may be missing."""
    found = identity.git_identity(host.env)
    if found.identity is None:
        return  # no git here: `claudy doctor` says so
    try:
        parent.import_identity(found.identity.wire())
    except ParentCommandFailed as e:  # an older parent without `identity`: let it be
        console.print(f"[yellow]git identity not passed on:[/] {escape(e.message)}")


def doctor_line(console: Console, host: Host) -> None:
    """`claudy doctor`'s note on the git identity workers get (never a failure)."""
    found = identity.git_identity(host.env)
    if found.identity:
        console.print(f"[green]✓[/] git identity: {escape(found.identity.describe())}")
    if found.note:
        console.print(f"[yellow]![/] git identity: {escape(found.note)}", soft_wrap=True)
