"""Tasks: a worker on a git worktree of a repository, each on its own branch (pure).

`claudy DIR --task NAME` makes the worktree `<repo>/.hal9000/tasks/NAME` on branch
`hal/NAME` (from HEAD, or `--from REF`) and spawns its own worker there. This module names
those things and checks what the user typed; `parent_agent/app/tasks.py` acts on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hal_common.config_schema import WorkerConfig
from hal_common.errors import UsageError

HAL_DIR = ".hal9000"  # in the repository's root, listed in .git/info/exclude
TASKS_DIR = f"{HAL_DIR}/tasks"
BRANCH_PREFIX = "hal/"
NAME_MAX = 32
EXCLUDE_LINE = f"/{HAL_DIR}/"
# A task is git work: where the worker image is left at its default (minimal, which has no
# git), a task's worker runs the standard image (git and common tools). An image named by
# the user's config or the project's file (`image`, `profile`, `dockerfile`) wins.
TASK_IMAGE = "hal9000/worker:standard"


def task_image(configured: str) -> str | None:
    """The image a task's worker runs instead of `configured`, or None: keep it."""
    return TASK_IMAGE if configured == WorkerConfig().image else None


# git-ref safe (git check-ref-format) and path safe: lowercase letters, digits, '.', '_',
# '-'; starting with a letter or digit; no '..', no trailing '.', no '.lock' ending
_NAME = re.compile(rf"^[a-z0-9][a-z0-9._-]{{0,{NAME_MAX - 1}}}$")
NAME_RULE = (
    f"lowercase letters, digits, '.', '_' and '-', at most {NAME_MAX}, starting with a "
    "letter or digit (it names the branch hal/NAME and the folder .hal9000/tasks/NAME)"
)

# a ref the user gives to --from: what `git rev-parse` takes, minus what would be an option
# or reach outside refs (`-x`, `@{-1}` is fine, a NUL or newline is not)
_REF = re.compile(r"^[A-Za-z0-9._/@{}~^:+-]{1,200}$")


def check_name(name: str) -> str:
    """`name` if it may name a task; else a UsageError saying the rule."""
    bad = not _NAME.match(name) or ".." in name or name.endswith((".", ".lock"))
    if bad:
        raise UsageError(f"bad task name {name!r}", hint=NAME_RULE)
    return name


def check_ref(ref: str) -> str:
    """`ref` if it may be given to git as a revision (never an option); else UsageError."""
    if not _REF.match(ref) or ref.startswith("-"):
        raise UsageError(
            f"bad --from {ref!r}", hint="a branch, tag or commit of the repository, e.g. main"
        )
    return ref


def branch(name: str) -> str:
    return f"{BRANCH_PREFIX}{name}"


def worktree(repo: str, name: str) -> str:
    """Where task `name` of the repository at `repo` lives."""
    return f"{repo.rstrip('/')}/{TASKS_DIR}/{name}"


@dataclass(frozen=True)
class TaskPath:
    """A path that is a task's worktree: its repository and its name."""

    repo: str
    name: str


def task_of(path: str) -> TaskPath | None:
    """The task whose worktree `path` (absolute, resolved) is; None for any other path."""
    head, sep, name = path.rstrip("/").rpartition(f"/{TASKS_DIR}/")
    if not sep or not head or "/" in name:
        return None
    try:
        check_name(name)
    except UsageError:
        return None
    return TaskPath(head, name)


def with_exclude(text: str) -> str | None:
    """`.git/info/exclude`'s new text with `.hal9000/` listed; None when it is already."""
    lines = text.splitlines()
    if any(line.strip() in (EXCLUDE_LINE, f"{HAL_DIR}/", HAL_DIR, f"/{HAL_DIR}") for line in lines):
        return None
    head = text if not text or text.endswith("\n") else text + "\n"
    return f"{head}# hal-9000's task worktrees\n{EXCLUDE_LINE}\n"


COMMIT = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def is_commit(text: str) -> bool:
    """A full object name (SHA-1 or SHA-256), as git prints them."""
    return bool(COMMIT.match(text))
