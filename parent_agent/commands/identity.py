"""`hal-agent identity`: the host's git identity and the GitHub token, sent by claudy on
stdin; what each worker is given."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from typing import Any

import click

from hal_common import identity
from hal_common.errors import UsageError
from hal_common.identity import IdentityError
from hal_io import manners
from parent_agent.adapters import identity_store
from parent_agent.commands.context import Parent, pass_parent


@click.group(cls=manners.Group)
def identity_group() -> None:
    """Your git identity in the workers, and the SSH agent and GitHub token they may get."""


def _stdin(what: str, limit: int) -> bytes:
    if sys.stdin.isatty():
        raise UsageError(
            f"{what} is read from stdin",
            hint="run it from the host: claudy sends it (claudy identity --help)",
        )
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"{what}: more than {limit} bytes on stdin")
    return data


@identity_group.command("import", hidden=True)
@pass_parent
def import_(p: Parent) -> None:
    """Store the host's git name and email (a JSON document on stdin, from claudy) and
    rewrite every worker's gitconfig when they changed."""
    try:
        ident = identity.from_wire(_stdin("the identity", identity.MAX_WIRE))
    except IdentityError as e:
        raise UsageError(f"identity refused: {e.message}") from None
    if identity_store.save_git(p.layout, ident):
        n = identity_store.refresh_workers(p.layout)
        click.echo(f"git identity: {ident.describe()} (in {n} worker(s))")
    else:
        click.echo(f"git identity: {ident.describe()} (unchanged)")


@identity_group.command("github-token")
@click.option("--remove", is_flag=True, help="Forget the token, in every worker too.")
@pass_parent
def github_token(p: Parent, remove: bool) -> None:
    """Store a GitHub token read from stdin (from `claudy identity github-token`), and hand
    it to the running workers opted in to it. Never shown, never in argv or env."""
    if remove:
        had = identity_store.remove_token(p.layout)
        n = identity_store.refresh_workers(p.layout)
        click.echo("GitHub token removed" if had else "no GitHub token was imported")
        if had:
            click.echo(f"taken from {n} worker(s)")
        return
    try:
        token = identity.check_token(
            _stdin("the token", identity.MAX_TOKEN + 2).decode("ascii", "replace"), "the token"
        )
    except IdentityError as e:
        raise UsageError(f"token refused: {e.message}") from None
    identity_store.save_token(p.layout, token)
    identity_store.refresh_workers(p.layout)
    click.echo("GitHub token imported; workers of the projects in [identity] github_token get it")


def status_doc(p: Parent) -> dict[str, Any]:
    cfg = p.config()
    sock = p.layout.ssh_agent_sock
    try:
        agent = stat.S_ISSOCK(os.stat(sock).st_mode)
    except OSError:
        agent = False
    return {
        "git": {"name": (g := identity_store.load_git(p.layout)).name, "email": g.email},
        "github_token": identity_store.token_status(p.layout),
        "ssh_agent": agent,
        "opted_in": {
            "ssh_agent": list(cfg.identity.ssh_agent),
            "github_token": list(cfg.identity.github_token),
        },
    }


@identity_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (no secret either).")
@pass_parent
def status(p: Parent, as_json: bool) -> None:
    """The git identity workers get, whether a GitHub token is imported (never the token),
    whether the host's SSH agent reaches the parent, and the projects opted in to each."""
    doc = status_doc(p)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    git = identity.GitIdentity(doc["git"]["name"], doc["git"]["email"])
    click.echo(f"git identity: {git.describe()}")
    tok = doc["github_token"]
    if tok["present"]:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(tok["imported_at"] or 0))
        click.echo(f"GitHub token: imported {when} (fingerprint {tok['fingerprint']})")
    else:
        click.echo("GitHub token: none (claudy identity github-token)")
    click.echo(f"SSH agent: {'from the host' if doc['ssh_agent'] else 'none from the host'}")
    for key, what in (("ssh_agent", "SSH agent"), ("github_token", "GitHub token")):
        dirs = doc["opted_in"][key]
        click.echo(f"{what} for: {', '.join(dirs) if dirs else 'no project'}")
