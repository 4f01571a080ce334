"""`claudy auth …` and `claudy sync`: the host's credential and Claude config, into the parent."""

from __future__ import annotations

import json
import os

import click
import docker
from docker.models.containers import Container
from rich.console import Console
from rich.markup import escape

from hal_common import credentials
from hal_common.errors import HalError
from hal_io.engine import run_in
from host_shim.adapters import auth, config_sync
from host_shim.adapters.images import exec_with_stdin
from host_shim.adapters.parent import running_parent

err = Console(stderr=True, highlight=False)


@click.group("auth")
def auth_group() -> None:
    """The credential workers use: imported from the host, never shown."""


@auth_group.command("import")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="A file holding a `claude setup-token` token, an API key, "
              "or a .credentials.json.")  # fmt: skip
@click.option("--from-env", is_flag=True,
              help=f"Import ${auth.ENV_KEY} (refused without this flag).")  # fmt: skip
def import_(token_file: str | None, from_env: bool) -> None:
    """Copy the host's Claude credential into the parent (over stdin, never env or argv).

    Without --token-file: ~/.claude/.credentials.json, else the macOS Keychain.
    """
    from host_shim.commands.cli import load_ctx

    c = load_ctx()
    found = auth.find(token_file=token_file, from_env=from_env)
    for note in found.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    if found.credential is None:
        raise HalError(
            "no Claude credential found on this host",
            hint="log in on the host (`claude`, then /login), or create a long-lived token "
            "with `claude setup-token` and run `claudy auth import --token-file FILE`",
        )
    client = c.client()
    parent = running_parent(client, c.cfg.parent.name)
    click.echo(auth.send(client, parent, found.credential))


@auth_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (no secret either).")
def status(as_json: bool) -> None:
    """What the parent holds, from where, and when it expires; and what the host has."""
    from host_shim.commands.cli import load_ctx

    c = load_ctx()
    parent = running_parent(c.client(), c.cfg.parent.name)
    stored = auth.parent_status(parent)
    host = auth.find()
    host_info = None
    if host.credential is not None:
        host_info = {
            "kind": host.credential.kind,
            "source": host.credential.source,
            "expires_at": host.credential.expires_at(),
            "same_as_parent": host.credential.fingerprint() == stored.get("fingerprint"),
        }
    if as_json:
        click.echo(json.dumps({"parent": stored, "host": host_info, "notes": host.notes}, indent=2))
        return
    _code, out = run_in(parent, ["hal-agent", "auth", "status"], "asking the parent")
    click.echo(f"parent: {out.strip()}")
    if host_info is None:
        click.echo("host: no credential found")
    else:
        expiry = host_info["expires_at"]
        when = credentials.describe_expiry(expiry if isinstance(expiry, float) else None)
        same = "same as imported" if host_info["same_as_parent"] else "differs from the parent's"
        click.echo(f"host: {host_info['kind']} in {host_info['source']}, {when}; {same}")
    for note in host.notes:
        click.echo(f"note: {note}")


@click.command("sync")
@click.option("--force", is_flag=True, help="Overwrite files changed inside, too.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
def sync(force: bool, dry_run: bool) -> None:
    """Copy settings, CLAUDE.md, agents, commands, skills and plugins from ~/.claude.

    A file changed inside the parent is kept (and named) unless --force.
    """
    from host_shim.commands.cli import load_ctx

    c = load_ctx()
    client = c.client()
    parent = running_parent(client, c.cfg.parent.name)
    click.echo(send_config(client, parent, force=force, dry_run=dry_run))


def send_config(
    client: docker.DockerClient, parent: Container, force: bool = False, dry_run: bool = False
) -> str:
    env = dict(os.environ)
    data, _count = config_sync.pack(auth.claude_dir(env), auth.state_file(env))
    argv = ["hal-agent", "sync", *(["--force"] if force else []),
            *(["--dry-run"] if dry_run else [])]  # fmt: skip
    code, out = exec_with_stdin(client, parent, argv, [data])
    if code != 0:
        raise HalError(out.strip() or f"sync failed with code {code}")
    return out.strip()


def first_run(client: docker.DockerClient, parent: Container, console: Console) -> None:
    """On `claudy`: the host's credential and config, when the parent lacks them (or is older).

    Never fatal: a worker without them starts logged out, and says so itself.
    """
    try:
        found = auth.find()
        stored = auth.parent_status(parent)
        if found.credential is not None and auth.should_import(found.credential, stored):
            auth.send(client, parent, found.credential)
            source = escape(found.credential.source)
            console.print(f"[green]imported the Claude credential from {source}[/]")
        elif found.credential is None and not stored.get("present"):
            for note in found.notes:
                console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
            console.print("[yellow]no Claude credential on this host: workers start logged out "
                          "(claudy auth import --help)[/]")  # fmt: skip
        code, out = run_in(parent, ["hal-agent", "sync", "--status"], "asking the parent")
        if code == 0 and json.loads(out).get("synced_at") is None:
            first = send_config(client, parent).splitlines()[0]
            if first.startswith("copied"):  # else ~/.claude holds no config to copy
                console.print(f"[green]your Claude config:[/] {escape(first)} from ~/.claude")
    except HalError as e:
        console.print(f"[yellow]warning:[/] {escape(e.message)}", soft_wrap=True)
