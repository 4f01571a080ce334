"""`hal-agent auth`: store a credential sent by claudy on stdin; say what is stored."""

from __future__ import annotations

import sys
import time

import click

from hal_common import credentials
from hal_common.errors import UsageError
from hal_common.protocol import AuthStatus, SyncStatus
from hal_io import manners
from parent_agent.adapters import claude_home
from parent_agent.commands.context import Parent, pass_parent


@click.group(cls=manners.Group)
def auth() -> None:
    """The credentials workers use (imported by `claudy auth import`)."""


@auth.command("import")
@pass_parent
def import_(p: Parent) -> None:
    """Read one credential document from stdin and store it in the shared Claude home.

    Only claudy calls this: the secret travels on this exec's stdin, never in argv or env.
    """
    if sys.stdin.isatty():
        raise UsageError(
            "auth import reads the credential from stdin",
            hint="run `claudy auth import` on the host; it finds and sends the credential",
        )
    data = sys.stdin.buffer.read(credentials.MAX_BYTES + 1)
    try:
        cred = credentials.from_wire(data)
    except credentials.CredentialError as e:
        raise UsageError(f"credential refused: {e}") from None
    home = p.layout.claude_home
    uid, gid = claude_home.default_owner(home, p.layout.host_uid, p.layout.host_gid)
    claude_home.store_credential(p.layout, cred, uid, gid)
    click.echo(f"imported {cred.kind} from {cred.source}")


@auth.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (still no secret).")
@pass_parent
def status(p: Parent, as_json: bool) -> None:
    """What is imported, from where, and when it expires (never the secret)."""
    st = claude_home.auth_status(p.layout.claude_home)
    if as_json:
        click.echo(AuthStatus.from_json(st).dumps())
        return
    click.echo(describe(st))


def describe(st: dict[str, object]) -> str:
    if st.get("error"):
        return f"credentials unreadable: {st['error']}"
    if not st.get("present"):
        return "no credentials imported: workers start logged out (claudy auth import)"
    lines = [f"{st.get('kind') or 'credential'} from {st.get('source') or 'an earlier import'}"]
    imported = st.get("imported_at")
    if isinstance(imported, int | float):
        lines.append(f"  imported {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(imported))}")
    expires = st.get("expires_at")
    known = expires if isinstance(expires, float) else None
    lines.append("  " + credentials.describe_expiry(known))
    if st.get("refreshable"):
        lines.append("  refreshed by Claude Code when it expires (the refresh token rotates)")
    if st.get("refreshed_since_import"):
        lines.append("  refreshed inside since the import: the host's copy is now stale")
    if st.get("subscription"):
        lines.append(f"  subscription: {st['subscription']}")
    return "\n".join(lines)


@click.command("sync", hidden=True)
@click.option("--force", is_flag=True, help="Also overwrite files changed inside.")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.option("--status", "status_only", is_flag=True, help="When the last sync was (JSON).")
@pass_parent
def sync(p: Parent, force: bool, dry_run: bool, status_only: bool) -> None:
    """Apply the host's Claude config, a tar on stdin from `claudy sync`."""
    from parent_agent.adapters import config_sync

    home = p.layout.claude_home
    if status_only:
        manifest = config_sync.load_manifest(home)
        files = len(manifest.get("files") or {})
        click.echo(SyncStatus(manifest.get("synced_at"), files).dumps())
        return
    if sys.stdin.isatty():
        raise UsageError("sync reads the host's config from stdin", hint="run `claudy sync`")
    uid, gid = claude_home.default_owner(home, p.layout.host_uid, p.layout.host_gid)
    data = sys.stdin.buffer.read()
    done = config_sync.apply(home, data, uid, gid, p.layout.lock_dir, force=force, dry_run=dry_run)
    for line in config_sync.report(done, dry_run):
        click.echo(line)
