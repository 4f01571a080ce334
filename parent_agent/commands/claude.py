"""`hal-agent claude …`: the parent's Claude Code store (install from stdin, list, remove)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import click

from hal_common import claude_code
from hal_common.errors import UsageError
from hal_io import manners
from parent_agent.adapters import claude_store, workers
from parent_agent.commands.context import Parent, pass_parent


def _chunks(size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := sys.stdin.buffer.read(size):
        yield chunk


@click.group("claude", cls=manners.Group)
def claude() -> None:
    """Claude Code versions in this parent's store (workers mount one, read-only)."""


@claude.command("install")
@click.argument("version")
@pass_parent
def install(p: Parent, version: str) -> None:
    """Install VERSION from the binary on stdin (`claudy claude update` streams it)."""
    claude_code.check(version)
    found, new = claude_store.install(p.layout.claude_store, version, _chunks())
    word = "installed" if new else "already installed"
    click.echo(f"Claude Code {found.version} {word} ({found.size >> 20} MiB)")
    pin = p.config().claude.version
    if pin and pin != version:
        click.echo(
            f"note: [claude] version pins {pin}: workers keep getting {pin}; to use "
            f"{version}, set it: `claudy config set claude.version {version}`"
        )


def listing(p: Parent) -> dict[str, Any]:
    """What `ls --json` says: the versions, the pin, the target, which workers use which."""
    store = p.layout.claude_store
    have = claude_store.installed(store)
    pin = p.config().claude.version
    target = claude_code.target(pin, [i.version for i in have])
    users: dict[str, list[str]] = {}
    try:
        for w in workers.list_workers(p.inner()):
            users.setdefault(w.claude, []).append(w.name)
    except Exception:  # noqa: BLE001 - the store is listed even when the engine is down
        users = {}
    return {
        "pinned": pin or None,
        "target": target,
        "installed": [
            {
                "version": i.version,
                "size": i.size,
                "pinned": i.version == pin,
                "target": i.version == target,
                "workers": sorted(users.get(i.version, [])),
            }
            for i in have
        ],
        "missing_pin": bool(pin) and pin not in {i.version for i in have},
        "strays": claude_store.strays(store),
    }


@claude.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_parent
def ls(p: Parent, as_json: bool) -> None:
    """Installed versions: which is pinned, which new workers get, which workers use which."""
    doc = listing(p)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    if not doc["installed"]:
        click.echo("no Claude Code installed (claudy claude update installs one)")
    for row in doc["installed"]:
        marks = [m for m in ("pinned", "target") if row[m]]
        mark = f" ({', '.join('new workers' if m == 'target' else m for m in marks)})"
        used = ", ".join(row["workers"]) or "no workers"
        click.echo(f"{row['version']:16} {row['size'] >> 20:5} MiB{mark if marks else ''}: {used}")
    if doc["missing_pin"]:
        click.echo(
            f"[claude] version pins {doc['pinned']}, which is not installed: "
            f"`claudy claude update {doc['pinned']}`"
        )
    for name in doc["strays"]:
        click.echo(f"ignored in the store: {name}")


@claude.command("rm")
@click.argument("version")
@pass_parent
def rm(p: Parent, version: str) -> None:
    """Remove an installed VERSION no worker uses (stopped ones included)."""
    claude_code.check(version)
    users = [w.name for w in workers.list_workers(p.inner()) if w.claude == version]
    if users:
        raise UsageError(
            f"Claude Code {version} is used by {', '.join(users)}",
            hint="restart them on another version (or hal-agent rm them) first",
        )
    if not claude_store.remove(p.layout.claude_store, version):
        raise UsageError(f"Claude Code {version} is not installed")
    click.echo(f"removed Claude Code {version}")
