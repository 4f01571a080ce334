"""`hal-agent ports [NAME]`: each running worker's listed ports (`[worker] ports`) and the
URL the host's browser opens each at, from the loop's snapshot (the loop maps them)."""

from __future__ import annotations

import click

from hal_common.errors import LoopUnavailable
from hal_common.protocol import PortRow, PortsReply
from hal_io.manners import complete_worker
from parent_agent.adapters import snapshot_file
from parent_agent.commands.context import Parent, pass_parent

NONE_LISTED = (
    "no running worker lists ports: `[worker] ports = [3000]` in the config (or the "
    "project's .hal9000.toml) gives new workers a URL for their server on port 3000"
)


def table(rows: list[PortRow]) -> str:
    lines = [("name", "port", "url")] + [
        (r.name, str(r.port), r.url or f"- ({r.problem or 'no host port'})") for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(2)]
    return "\n".join(
        f"{line[0].ljust(widths[0])}  {line[1].rjust(widths[1])}  {line[2]}" for line in lines
    )


@click.command()
@click.argument("name", required=False, shell_complete=complete_worker)
@click.option("--json", "as_json", is_flag=True, help="The rows as JSON.")
@pass_parent
def ports(p: Parent, name: str | None, as_json: bool) -> None:
    """Each running worker's listed ports (NAME's only, when given) and the URL where the
    host's browser opens each: name, port, url. A server must listen on the worker's
    address (0.0.0.0), not only on its 127.0.0.1."""
    snap = snapshot_file.read(p.layout.status_file)
    if snap is None:
        raise LoopUnavailable(
            "the parent's loop has published nothing yet",
            hint="it is starting (wait a moment), or `claudy logs --agent` says why not",
        )
    rows = [r for r in snap.ports if name is None or r.name == name]
    if as_json:
        click.echo(PortsReply(tuple(rows)).dumps())
        return
    if not rows:
        click.echo(f"{name} lists no ports" if name else NONE_LISTED)
        return
    click.echo(table(rows))
    if not p.layout.ports:
        click.echo("the parent publishes no host ports: `claudy down && claudy` makes it anew")
