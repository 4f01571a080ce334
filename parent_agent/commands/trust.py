"""`hal-agent trust DIR`: trust the current content of DIR's `.hal9000.toml` (direnv-style).

A project file is worker-writable, so what in it widens the user's config (more egress,
ports, higher limits, an image that is not a built-in, a Dockerfile) applies only to a
content the user trusted: its sha256 is recorded in the parent's data volume, and a changed
file needs trusting again. `claudy trust DIR` forwards here.
"""

from __future__ import annotations

import click

from hal_common.errors import UsageError
from hal_common.project_config import PROJECT_FILE, widening
from parent_agent.adapters import project_file
from parent_agent.app import sessions
from parent_agent.commands.context import Parent, pass_parent


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--sha256",
    "expected",
    default=None,
    help="Trust only if the file's content still has this hash (the one you reviewed: "
    "`config validate --project DIR` prints it).",
)
@click.option("--forget", is_flag=True, help="Take the trust back.")
@pass_parent
def trust(p: Parent, directory: str, expected: str | None, forget: bool) -> None:
    """Trust DIRECTORY's .hal9000.toml as it is now: review it first.

    What in it widens your config applies to its new workers from then on; a change to
    the file needs trusting again.
    """
    project = sessions.project_path(directory, p.layout)
    root = project_file.root_of(project, p.layout)
    if forget:
        done = project_file.forget(p.layout, root)
        click.echo(f"{root}: " + ("trust taken back" if done else "was not trusted"))
        return
    pf = project_file.read(root)  # a bad file is refused with its line, never trusted
    if pf is None:
        raise UsageError(f"{root} has no {PROJECT_FILE}", hint="nothing to trust")
    if expected is not None and expected.lower() != pf.sha256:
        raise UsageError(
            f"{pf.source} changed: its sha256 is {pf.sha256}, not {expected}",
            hint="review it again; nothing was trusted",
        )
    project_file.trust(p.layout, root, pf.sha256)
    click.echo(f"trusted {pf.source} (sha256 {pf.sha256})")
    reasons = widening(pf, p.config())
    if reasons:
        click.echo("new workers of this project get, beyond your config:")
        for line in reasons:
            click.echo(f"  {line}")
