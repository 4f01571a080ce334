"""Projects that travel by git (pure): when the engine cannot see the project's folder, the
repository goes to the parent as a git bundle, and the agent's branch comes back as one.

`[parent] projects` says which way a project reaches its worker: `mount` (the roots are
bind-mounted at the same path: the engine runs on this host), `git` (always a bundle) or
`auto` (claudy asks the parent whether it sees a probe file claudy just wrote). On the git
path the parent keeps one repository per host repository, `/data/repos/<key>` (its `.git`
only: nothing is checked out there), and every worker is a task on a worktree of it
(`hal_common/tasks.py`). This module names those things and checks what crosses.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hal_common.config_schema import PROJECTS_MODES as PROJECTS_MODES
from hal_common.errors import HalError, UsageError
from hal_common.tasks import BRANCH_PREFIX, NAME_MAX, check_name

DEFAULT_TASK = "main"  # `claudy DIR` on the git path, on a detached HEAD
# what a bundle may weigh (either way): bigger is refused before git reads it
BUNDLE_MAX = 2 << 30
PROBE_PREFIX = "hal9000-probe-"

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,40}-[0-9a-f]{16}$")
# a branch the user's repository sends as the tasks' base: git-ref safe, never an option,
# never hal-9000's own namespace (the agents' branches come back from there)
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


class NotGitRepository(UsageError):
    """The engine cannot see the folder, and it is no git repository: nothing can travel."""


def repo_key(host_path: str) -> str:
    """The parent's name for the host repository at `host_path` (its top level, resolved):
    its folder's name, readable, and a hash of the whole path (two `app`s differ)."""
    base = re.sub(r"[^a-z0-9._-]+", "-", host_path.rstrip("/").rsplit("/", 1)[-1].lower())
    base = base.strip("-.")[:40] or "repo"
    digest = hashlib.sha256(host_path.encode()).hexdigest()[:16]
    return f"{base}-{digest}"


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise UsageError(f"bad repository key {key!r}", hint="claudy computes it: run claudy")
    return key


def check_branch(name: str) -> str:
    """`name` if a user's branch may be sent as the tasks' base; else UsageError."""
    bad = (
        not _BRANCH.match(name)
        or ".." in name
        or "//" in name
        or name.endswith((".", "/", ".lock"))
        or "/." in name
        or name.startswith(BRANCH_PREFIX)
    )
    if bad:
        raise UsageError(
            f"branch {name!r} cannot be sent to the parent",
            hint="check out a branch with a plain name (letters, digits, '.', '_', '-', '/'), "
            f"not one under {BRANCH_PREFIX}",
        )
    return name


def task_for_branch(branch: str | None) -> str:
    """The task `claudy DIR` opens on the git path: the current branch's name made a task
    name (`feature/Login` → `feature-login`), `main` on a detached HEAD."""
    if not branch:
        return DEFAULT_TASK
    name = re.sub(r"[^a-z0-9._-]+", "-", branch.lower()).strip("-.")
    name = re.sub(r"\.{2,}", ".", name)[:NAME_MAX].rstrip("-.")
    if name.endswith(".lock"):
        name = name[: -len(".lock")]
    try:
        return check_name(name)
    except UsageError:
        return DEFAULT_TASK


@dataclass(frozen=True)
class Head:
    commit: str
    ref: str


_HEAD_LINE = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64}) (\S{1,255})$")


def parse_heads(text: str) -> tuple[Head, ...]:
    """`git bundle list-heads`'s lines; HalError on any line of another form (a ref name
    with a space, a newline, a control character: a hostile bundle)."""
    found = []
    for line in text.splitlines():
        m = _HEAD_LINE.match(line)
        if not m or any(ord(c) < 0x21 or c == "\x7f" for c in m.group(2)):
            raise HalError(f"the bundle lists a ref git would not name: {line[:80]!r}")
        found.append(Head(m.group(1), m.group(2)))
    return tuple(found)


def only_ref(heads: tuple[Head, ...], ref: str) -> Head:
    """The one head `ref` of a bundle that must hold that ref and nothing else (`HEAD` may
    come along, at the same commit); HalError otherwise."""
    wanted = [h for h in heads if h.ref == ref]
    others = [h.ref for h in heads if h.ref != ref and h.ref != "HEAD"]
    if len(wanted) != 1 or others:
        extra = f"; it also holds {', '.join(others[:3])}" if others else ""
        raise HalError(f"the bundle must hold exactly {ref}{extra}: refused, nothing fetched")
    return wanted[0]


def not_git_error(directory: str) -> NotGitRepository:
    return NotGitRepository(
        f"{directory} is not a git repository, and the parent's engine cannot see this "
        'folder (it runs on another host, or [parent] projects = "git"): only a git '
        "repository can travel to it",
        hint=f"make it one (cd {directory} && git init && git add -A && git commit -m start), "
        'or run on a local engine with [parent] projects = "auto" or "mount"',
    )
