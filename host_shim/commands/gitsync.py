"""Projects that travel by git (`hal_common/gitsync.py`): whether the parent sees the
project's folder, the repository sent as a bundle (`claudy DIR` on the git path), and
`claudy pull NAME` / `claudy push NAME`."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import click
from rich.markup import escape

from hal_common import gitsync
from hal_common.errors import HalError, UsageError
from hal_common.tasks import branch as task_branch
from hal_common.tasks import check_name
from host_shim.adapters import local_git
from host_shim.adapters.parent import running_parent
from host_shim.adapters.parent_client import ParentClient
from host_shim.commands.context import Ctx, Host, load_ctx, pass_host

log = logging.getLogger(__name__)


# --- which way: the bind mount or git -----------------------------------------------------


def parent_sees(agent: ParentClient, project: str) -> bool:
    """Write a random probe file in the project (its `.git` when it has one: the work tree
    is left alone) and ask the parent whether it reads the same at the same path. A folder
    claudy cannot write is taken as seen (the bind mount, as before)."""
    dot = os.path.join(project, ".git")
    where = dot if os.path.isdir(dot) and not os.path.islink(dot) else project
    token = secrets.token_hex(16)
    path = os.path.join(where, f"{gitsync.PROBE_PREFIX}{token[:12]}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        log.info("cannot write a probe in %s (%s): taken as seen", where, e)
        return True
    try:
        os.write(fd, token.encode())
        os.close(fd)
        return agent.sees(path, token)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def by_git(c: Ctx, agent: ParentClient, project: str) -> bool:
    """`[parent] projects`: the git path for `project`?"""
    mode = c.cfg.parent.projects
    if mode == "auto":
        seen = parent_sees(agent, project)
        if not seen:
            c.progress.print(
                "[dim]the parent's engine does not see this folder: the repository goes by git[/]"
            )
        return not seen
    return mode == "git"


# --- the repository sent -------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    path: str  # the parent's copy of the repository (the spawn's DIR)
    task: str
    from_ref: str | None


def top_of(directory: str) -> str:
    top = local_git.toplevel(directory)
    if top is None:
        raise gitsync.not_git_error(directory)
    return top


@contextlib.contextmanager
def spool() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hal9000-bundle-") as d:
        yield os.path.join(d, "b.bundle")


def chunks_of(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def send(c: Ctx, agent: ParentClient, project: str, task: str | None, from_ref: str | None) -> Sent:
    """`project`'s repository into the parent (its current branch: what the parent lacks of
    it), and the task its worker runs: `task`, else one named after that branch."""
    top = top_of(project)
    branch = local_git.current_branch(top)
    if branch is None:
        raise UsageError(
            f"{top} is on a detached HEAD: only a branch can travel to the parent",
            hint="check out a branch (git switch -c NAME), then run claudy again",
        )
    gitsync.check_branch(branch)
    if not local_git.tip(top, "HEAD"):
        raise UsageError(
            f"{top} has no commit yet, so there is nothing to send",
            hint="make a first commit (git add -A && git commit -m start)",
        )
    key = gitsync.repo_key(top)
    said = push_branch(c, agent, top, key, branch, strict=False)
    if said:
        c.progress.print(f"[dim]{escape(said)}[/]")
    name = task or gitsync.task_for_branch(branch)
    info = agent.repo_info(key)
    if name in (info.get("tasks") or {}):  # it goes on where it was (as any task's)
        return Sent(str(info["path"]), name, from_ref)
    return Sent(str(info["path"]), name, from_ref if from_ref is not None else branch)


def push_branch(c: Ctx, agent: ParentClient, top: str, key: str, branch: str, strict: bool) -> str:
    """What the parent lacks of `branch`, sent (fast-forward only); what happened, in words.
    A branch the parent holds that is not in the local one is refused (`strict`) or left
    as it is, said."""
    info = agent.repo_info(key)
    theirs = str(info.get("base_commit") or "") if info.get("base") == branch else ""
    if not theirs and info.get("exists"):  # another branch is the base: this one's tip?
        theirs = str((info.get("branches") or {}).get(branch, ""))
    mine = local_git.tip(top, f"refs/heads/{branch}")
    if theirs and theirs == mine:
        return f"{branch} is up to date in the parent"
    have = ""
    if theirs:
        if not local_git.tip(top, theirs) or not local_git.is_ancestor(top, theirs, mine):
            message = (
                f"the parent's {branch} ({theirs[:12]}) is not in your {branch}: not a fast-forward"
            )
            if strict:
                raise UsageError(
                    f"{message}, refused; nothing was sent",
                    hint=f"rebase or merge your {branch} onto {theirs[:12]} "
                    "(claudy pull NAME brings the agents' branches), then push again",
                )
            c.err.print(
                f"[yellow]{escape(message)}: the parent keeps its own; "
                "`claudy push NAME` after a rebase sends yours[/]",
                soft_wrap=True,
            )
            return ""
        have = theirs
    with spool() as path:
        local_git.create_bundle(top, branch, path, have)
        size = os.path.getsize(path)
        c.progress.print(f"[dim]sending {branch} to the parent ({size / 1e6:.1f} MB bundle)[/]")
        return agent.repo_receive(key, branch, chunks_of(path))


# --- pull and push -------------------------------------------------------------------------


def _agent(c: Ctx) -> ParentClient:
    return ParentClient(running_parent(c.engine(), c.cfg.parent.name))


@click.command()
@click.argument("name")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option(
    "--max-mb",
    type=click.IntRange(1),
    default=gitsync.BUNDLE_MAX >> 20,
    show_default=True,
    help="Refuse a bigger bundle.",
)
@pass_host
def pull(host: Host, name: str, directory: str, max_mb: int) -> None:
    """Bring task NAME's branch hal/NAME from the parent into DIRECTORY's repository.

    For projects that travel by git: the agent's commits arrive as a bundle, verified, into
    the local branch hal/NAME (fast-forward only); your checked-out branch and your files
    are never touched.
    """
    c = load_ctx(host)
    check_name(name)
    top = top_of(directory)
    key = gitsync.repo_key(top)
    agent = _agent(c)
    ref = f"refs/heads/{task_branch(name)}"
    short = task_branch(name)
    # what this repository holds of it already: the parent leaves that out
    have = [c for c in (local_git.tip(top, ref), local_git.tip(top, "HEAD")) if c]
    with spool() as path:
        with open(path, "wb") as out:
            agent.repo_bundle(key, name, out, max_mb << 20, dict.fromkeys(have))
        if os.path.getsize(path) == 0:  # its tip is one we hold: nothing to send
            mine = local_git.tip(top, ref)
            if not mine:  # the agent has not committed yet: hal/NAME is our HEAD's commit
                mine = local_git.tip(top, "HEAD")
                local_git.ok(top, ["update-ref", ref, mine, ""], f"making {short}")
                click.echo(f"{short}: new at {mine[:12]}, no commit of the agent's yet")
                return
            click.echo(f"{short} is up to date at {mine[:12]}")
            return
        got = local_git.fetch_bundle(top, path, ref)
    if got.old == got.new:
        click.echo(f"{short} is up to date at {got.new[:12]}")
        return
    new = local_git.count(top, f"{got.old}..{got.new}") if got.old else None
    base = local_git.current_branch(top)
    ahead = local_git.count(top, f"{base}..{got.new}") if base else None
    words = [f"{short}: {'new at' if not got.old else 'updated to'} {got.new[:12]}"]
    if new is not None:
        words.append(f"{new} new commit(s)")
    if base and ahead is not None:
        words.append(f"{ahead} commit(s) ahead of {base}")
    click.echo(", ".join(words))
    click.echo(f"  see them: git log {base or 'HEAD'}..{short}")


@click.command()
@click.argument("name")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@pass_host
def push(host: Host, name: str, directory: str) -> None:
    """Send new local commits of task NAME's base branch to the parent (fast-forward only).

    For projects that travel by git: the agent in NAME can then rebase or merge onto them.
    """
    c = load_ctx(host)
    check_name(name)
    top = top_of(directory)
    key = gitsync.repo_key(top)
    agent = _agent(c)
    info = agent.repo_info(key)
    if not info.get("exists"):
        raise UsageError(
            f"the parent holds no copy of {top} yet",
            hint=f"claudy {top} --task {name} sends it",
        )
    if name not in (info.get("tasks") or {}):
        raise UsageError(
            f"the parent's copy of {top} has no task {name}",
            hint="claudy ls lists the tasks",
        )
    base = str(info.get("base") or "")
    if not base:
        raise HalError(f"the parent's copy of {top} has no base branch", hint="look at it")
    said = push_branch(c, agent, top, key, base, strict=True)
    click.echo(said)
    click.echo(f"  in the worker of {name}: git rebase {base} (or git merge {base})")
