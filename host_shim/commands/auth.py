"""`claudy auth …` and `claudy sync`: the host's credential and Claude config, into the parent."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape

from hal_common import credentials
from hal_common.errors import HalError
from hal_io import manners
from host_shim.adapters import auth, config_sync
from host_shim.adapters.parent import running_parent
from host_shim.adapters.parent_client import ParentClient, ParentCommandFailed
from host_shim.commands.context import Host, load_ctx, pass_host


def _parent(host: Host) -> ParentClient:
    c = load_ctx(host)
    return ParentClient(running_parent(c.engine(), c.cfg.parent.name))


@click.group("auth", cls=manners.Group)
def auth_group() -> None:
    """The credential workers use: imported from the host, never shown."""


@auth_group.command("import")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="A file holding a `claude setup-token` token, an API key, or a .credentials.json.",
)
@click.option(
    "--from-env", is_flag=True, help=f"Import ${auth.ENV_KEY} (refused without this flag)."
)
@pass_host
def import_(host: Host, token_file: str | None, from_env: bool) -> None:
    """Copy the host's Claude credential into the parent (over stdin, never env or argv).

    Without --token-file: ~/.claude/.credentials.json, else the macOS Keychain.
    """
    c = load_ctx(host)
    found = auth.find(host.env, token_file=token_file, from_env=from_env)
    for note in found.notes:
        host.err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    if found.credential is None:
        raise HalError(
            "no Claude credential found on this host",
            hint="log in on the host (`claude`, then /login), or create a long-lived token "
            "with `claude setup-token` and run `claudy auth import --token-file FILE`",
        )
    parent = ParentClient(running_parent(c.engine(), c.cfg.parent.name))
    click.echo(parent.import_credential(found.credential.wire()))


@auth_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (no secret either).")
@pass_host
def status(host: Host, as_json: bool) -> None:
    """What the parent holds, from where, and when it expires; and what the host has."""
    parent = _parent(host)
    stored = parent.auth_status()
    found = auth.find(host.env)
    host_info = None
    if found.credential is not None:
        host_info = {
            "kind": found.credential.kind,
            "source": found.credential.source,
            "expires_at": found.credential.expires_at(),
            "same_as_parent": found.credential.fingerprint() == stored.fingerprint,
        }
    if as_json:
        doc = {"parent": stored.to_json(), "host": host_info, "notes": found.notes}
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"parent: {parent.auth_status_text()}")
    if host_info is None:
        click.echo("host: no credential found")
    else:
        expiry = host_info["expires_at"]
        when = credentials.describe_expiry(expiry if isinstance(expiry, float) else None)
        same = "same as imported" if host_info["same_as_parent"] else "differs from the parent's"
        click.echo(f"host: {host_info['kind']} in {host_info['source']}, {when}; {same}")
    for note in found.notes:
        click.echo(f"note: {note}")


@click.command("sync")
@click.option("--force", is_flag=True, help="Overwrite files changed inside, too.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@pass_host
def sync(host: Host, force: bool, dry_run: bool) -> None:
    """Copy settings, CLAUDE.md, agents, commands, skills and plugins from ~/.claude.

    A file changed inside the parent is kept (and named) unless --force.
    """
    click.echo(send_config(host, _parent(host), force=force, dry_run=dry_run))


def send_config(
    host: Host, parent: ParentClient, force: bool = False, dry_run: bool = False
) -> str:
    """Pack the host's Claude config and have the parent apply it; the parent's report."""
    data, _count = config_sync.pack(auth.claude_dir(host.env), auth.state_file(host.env))
    return parent.sync(data, force=force, dry_run=dry_run)


def first_run(host: Host, parent: ParentClient, console: Console) -> None:
    """On `claudy`: the host's credential and config, when the parent lacks them (or is older).

    Never fatal: a worker without them starts logged out, and says so itself.
    """
    try:
        found = auth.find(host.env)
        stored = parent.auth_status()
        if found.credential is not None and auth.should_import(found.credential, stored):
            parent.import_credential(found.credential.wire())
            source = escape(found.credential.source)
            console.print(f"[green]imported the Claude credential from {source}[/]")
        elif found.credential is None and not stored.present:
            for note in found.notes:
                console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
            console.print(
                "[yellow]no Claude credential on this host: workers start logged out "
                "(claudy auth import --help)[/]"
            )
        if _never_synced(parent):
            first = send_config(host, parent).splitlines()[0]
            if first.startswith("copied"):  # else ~/.claude holds no config to copy
                console.print(f"[green]your Claude config:[/] {escape(first)} from ~/.claude")
    except HalError as e:
        console.print(f"[yellow]warning:[/] {escape(e.message)}", soft_wrap=True)


def _never_synced(parent: ParentClient) -> bool:
    try:
        return parent.sync_status().synced_at is None
    except ParentCommandFailed:  # an older parent without `sync --status`: leave it be
        return False
