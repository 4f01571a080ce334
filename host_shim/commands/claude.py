"""`claudy claude …`: Claude Code versions, installed once into the parent for all workers.

No image is rebuilt: the binary goes from npm (or a file) into a host cache, then over stdin
into the parent's read-only store, from which each new or restarted worker mounts one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from platform import machine

import click
from rich.console import Console

from hal_common import claude_code
from hal_common.errors import UsageError
from hal_io import manners
from host_shim.adapters import claude_fetch
from host_shim.adapters.engine import HostEngine
from host_shim.adapters.parent import running_parent
from host_shim.adapters.parent_client import ParentClient
from host_shim.commands.context import Ctx, Host, load_ctx, pass_host


def engine_platform(engine: HostEngine) -> str:
    return claude_code.platform(engine.info("asking the engine's architecture").arch or "x86_64")


class _Meter:
    """Progress on stderr: one line redrawn in a terminal, else a line per tenth."""

    def __init__(self, err: Console, what: str) -> None:
        self.err, self.what, self.last, self.shown = err, what, 0.0, -1

    def __call__(self, done: int, total: int) -> None:
        tenth = 10 * done // total if total else -1
        if self.err.is_terminal:
            now = time.monotonic()
            if now - self.last < 0.2 and done != total:
                return
            self.last = now
            end = "\n" if done == total else "\r"
        elif tenth == self.shown or tenth < 0:
            return
        else:
            end = "\n"
        self.shown = tenth
        of = f" of {total >> 20} MiB ({100 * done // total}%)" if total else " MiB"
        self.err.print(f"{self.what}: {done >> 20}{of}", highlight=False, end=end)


def _counted(chunks: Iterator[bytes], meter: _Meter, total: int) -> Iterator[bytes]:
    done = 0
    for chunk in chunks:
        done += len(chunk)
        meter(done, total)
        yield chunk


def install(
    c: Ctx, engine: HostEngine, agent: ParentClient, version: str | None, source: Path | None
) -> str:
    """Fetch (or read `source`) and install one version into the parent; the parent's
    answer. `version` None: npm's latest (or, with `source`, the tarball's own)."""
    if source is not None:
        version = version or claude_fetch.tar_version(source)
        if version is None:
            raise UsageError(
                f"which version is {source}?",
                hint="name it: claudy claude update VERSION --from FILE",
            )
        path = source
    else:
        platform = engine_platform(engine)
        version = version or claude_fetch.latest(c.host.env, platform)
        claude_code.check(version)
        meter = _Meter(c.progress, f"downloading Claude Code {version}")
        path = claude_fetch.fetch(c.host.env, platform, version, meter).binary
    claude_code.check(version)
    size, chunks = claude_fetch.binary_stream(path)
    sending = _counted(chunks, _Meter(c.progress, f"installing Claude Code {version}"), size)
    return agent.claude_install(version, sending)


def ensure(c: Ctx, engine: HostEngine, agent: ParentClient) -> None:
    """The Claude Code new workers get is installed in the parent: the pin, else the newest
    installed, else the tested default (`claude_code.DEFAULT_VERSION`). One cheap probe when
    it is; a download (cached) and an install when not."""
    names = [n for n in agent.claude_versions() if claude_code.valid(n)]
    want = claude_code.wanted(c.cfg.claude.version, names)
    if want in names:
        return
    c.progress.print(f"[cyan]Claude Code {want} is not in the parent yet: installing it[/]")
    c.progress.print(install(c, engine, agent, want, None), highlight=False)


@click.group("claude", cls=manners.Group)
def claude_group() -> None:
    """Claude Code versions for all workers (no image rebuild)."""


@claude_group.command("update")
@click.argument("version", required=False)
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Install a local binary or npm tarball (offline) instead of downloading.",
)
@pass_host
def update(host: Host, version: str | None, source: Path | None) -> None:
    """Install VERSION (default: npm's latest) once for all workers.

    New and restarted workers get it unless [claude] version pins another; running workers
    keep theirs until restarted (the dashboard marks them outdated)."""
    if version is not None:
        claude_code.check(version)
    c = load_ctx(host)
    engine = c.engine()
    agent = ParentClient(running_parent(engine, c.cfg.parent.name))
    click.echo(install(c, engine, agent, version, source))


@claude_group.command("fetch", hidden=True)
@click.argument("version", required=False)
@pass_host
def fetch(host: Host, version: str | None) -> None:
    """Download VERSION (default: the tested one) into the host cache only (CI set-up)."""
    platform = claude_code.platform(machine())
    version = claude_code.check(version or claude_code.DEFAULT_VERSION)
    found = claude_fetch.fetch(host.env, platform, version, _Meter(host.progress, "downloading"))
    click.echo(str(found.path))


@claude_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_host
def ls(host: Host, as_json: bool) -> None:
    """Installed versions, the pinned one, and which workers use which."""
    c = load_ctx(host)
    agent = ParentClient(running_parent(c.engine(), c.cfg.parent.name))
    if as_json:
        click.echo(json.dumps(agent.claude_ls(), indent=2))
        return
    res = agent.parent.exec(["hal-agent", "claude", "ls"], "listing Claude Code")
    click.echo(res.output.rstrip())
