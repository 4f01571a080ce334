"""git, run by the parent on trees a worker can write: as the repository's owner, with
nothing of the repository's own that could run a program, bounded in time and output.

A worker writes its project, and a task's worker writes the repository's `.git` (objects,
refs, its worktree's index); `.git/config` and `.git/hooks` are read-only to every worker
(`parent_agent/core/spec.py`). Whatever a worker planted, this module's git:

- runs as the repository's owner (the uid the worker runs as), never as the parent's root;
- names its repository outright (`GIT_DIR`, `GIT_COMMON_DIR`, `GIT_WORK_TREE`): a `.git`
  file or a `commondir` a worker rewrote is never followed;
- runs no hook (`core.hooksPath=/dev/null`), no fsmonitor, no pager, no external diff or
  textconv (`--no-ext-diff --no-textconv`), no system or global config, no credential
  prompt, takes no optional lock (`GIT_OPTIONAL_LOCKS=0`: `status` writes nothing);
- is killed after `timeout` seconds, and its output is cut at `limit` bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hal_common.errors import HalError, UsageError
from hal_common.tasks import TaskPath, task_of
from parent_agent.adapters import untrusted

log = logging.getLogger(__name__)

GIT = "/usr/bin/git"
TIMEOUT_S = 20.0
LIMIT = 1 << 20
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.askPass=",
    "core.sshCommand=false",
    "credential.helper=",
    "diff.external=",
    "safe.directory=*",
    "protocol.allow=never",  # no fetch, no clone: the parent reaches no remote
    "advice.detachedHead=false",
)
_MAX_GITFILE = 4096


class GitFailed(HalError):
    """git exited non-zero (or timed out): its message in `message`."""


@dataclass(frozen=True)
class Result:
    code: int
    out: bytes
    err: str
    cut: bool = False  # the output reached the limit and was cut there

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace").strip()


@dataclass(frozen=True)
class Repo:
    """Where git must look, said outright. `git_dir` is the worktree's own admin directory
    for a linked worktree (`<common>/worktrees/<id>`), else `common`."""

    root: str  # the main checkout (the common .git's parent)
    common: str  # `<root>/.git`
    work_tree: str
    git_dir: str
    owner: tuple[int, int]

    @property
    def linked(self) -> bool:
        return self.git_dir != self.common

    def env(self) -> dict[str, str]:
        return {
            "GIT_DIR": self.git_dir,
            "GIT_COMMON_DIR": self.common,
            "GIT_WORK_TREE": self.work_tree,
        }


def base_env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",
        "LC_ALL": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_PAGER": "cat",
        "GIT_EDITOR": "false",
    }


def umask_of(root: str | None) -> int:
    """The umask of git's writes: 002 when the repository's main checkout is writable by its
    group (a project shared with the agent's group, as claudy tells a root user to make it:
    a task's new worktree must be the agent's to write too), else 022."""
    try:
        shared = root is not None and bool(os.stat(root).st_mode & stat.S_IWGRP)
    except OSError:
        shared = False
    return 0o002 if shared else 0o022


def run(
    repo: Repo | None,
    args: Sequence[str],
    *,
    cwd: str | None = None,
    owner: tuple[int, int] | None = None,
    timeout: float = TIMEOUT_S,
    limit: int = LIMIT,
    env: Mapping[str, str] | None = None,
    git: str = GIT,
) -> Result:
    """`git ARGS` for `repo` (its owner, its paths); see the module's docstring."""
    argv = [git]
    for item in SAFE_CONFIG:
        argv += ["-c", item]
    argv += list(args)
    full = {**base_env(), **(repo.env() if repo else {}), **(env or {})}
    who = owner or (repo.owner if repo else None)
    kwargs: dict[str, object] = {"umask": umask_of(repo.root if repo else None)}
    if who is not None and os.geteuid() == 0 and who != (0, 0):
        kwargs.update(user=who[0], group=who[1], extra_groups=[])
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd or (repo.work_tree if repo else "/"),
            env=full,
            start_new_session=True,  # a timeout kills all it started
            **kwargs,  # type: ignore[call-overload]
        )
    except OSError as e:
        raise GitFailed(f"cannot run git: {e}", hint="the parent image ships git") from None
    out, err, cut, timed_out = _collect(proc, timeout, limit)
    if timed_out:
        raise GitFailed(f"git {args[0] if args else ''} took over {timeout:g}s and was stopped")
    return Result(proc.returncode, out, err.decode(errors="replace").strip(), cut)


def _collect(
    proc: subprocess.Popen[bytes], timeout: float, limit: int
) -> tuple[bytes, bytes, bool, bool]:
    """Both pipes read until git exits, at most `limit` bytes of stdout and 64 KiB of
    stderr; past the limit or the deadline its process group is killed."""
    if proc.stdout is None or proc.stderr is None:
        raise GitFailed("git's pipes were not made")
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    bufs = {"out": bytearray(), "err": bytearray()}
    caps = {"out": limit, "err": 1 << 16}
    deadline = time.monotonic() + timeout
    cut = timed_out = False
    open_pipes = 2
    while open_pipes:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for key, _ in sel.select(left):
            chunk = os.read(key.fd, 1 << 16)
            name = str(key.data)
            if not chunk:
                sel.unregister(key.fileobj)
                open_pipes -= 1
                continue
            room = caps[name] - len(bufs[name])
            bufs[name] += chunk[: max(room, 0)]
            if name == "out" and len(chunk) > room:
                cut = True
        if cut:
            break
    sel.close()
    if cut or timed_out:
        _kill(proc)
    proc.stdout.close()
    proc.stderr.close()
    proc.wait()
    return bytes(bufs["out"]), bytes(bufs["err"]), cut, timed_out


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def ok(repo: Repo | None, args: Sequence[str], what: str, **kw: object) -> Result:
    """`run`, raising GitFailed (with git's own words) unless it exits 0."""
    res = run(repo, args, **kw)  # type: ignore[arg-type]
    if res.code != 0:
        said = res.err.splitlines()[-1] if res.err else f"exit code {res.code}"
        raise GitFailed(f"{what}: {said}")
    return res


# --- finding a repository, without running git ---------------------------------------------


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _real_dir(path: str) -> bool:
    """`path` is a directory, reached without a symlink anywhere on the way."""
    st = _lstat(path)
    return st is not None and stat.S_ISDIR(st.st_mode) and os.path.realpath(path) == path


def read_gitfile(work_tree: str) -> str | None:
    """The gitdir a worktree's `.git` file names (absolute, normalised); None when `.git`
    is not a regular file of that form. Read without following links, bounded."""
    try:
        data = untrusted.read_file(Path(work_tree), ".git", limit=_MAX_GITFILE)
    except OSError:
        return None
    if data is None:
        return None
    text = data.decode(errors="replace").strip()
    if not text.startswith("gitdir: ") or "\n" in text:
        return None
    target = text[len("gitdir: ") :]
    if not os.path.isabs(target):
        target = os.path.join(work_tree, target)
    return os.path.normpath(target)


def find_repo(directory: str) -> Repo | None:
    """The repository `directory` (absolute, resolved) lies in, or None: the nearest `.git`
    above it. A `.git` directory is a main checkout; a `.git` file is taken only when it is
    a linked worktree of a main checkout (`<root>/.git/worktrees/<id>`, as every task is).
    Raises UsageError for what a worker may have planted (a `commondir` in a main `.git`)
    or what hal-9000 does not handle (a submodule's `.git` file, a bare repository)."""
    d = directory.rstrip("/") or "/"
    while True:
        dot = os.path.join(d, ".git")
        st = _lstat(dot)
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                return _main(d)
            if stat.S_ISREG(st.st_mode):
                return _linked(d)
            raise UsageError(f"{dot} is neither a directory nor a file (a symlink?)")
        if d == "/":
            return None
        d = os.path.dirname(d)


def _main(root: str) -> Repo:
    common = os.path.join(root, ".git")
    if not _real_dir(common) or _lstat(os.path.join(common, "HEAD")) is None:
        raise UsageError(f"{common} is not a git directory", hint="`git status` there says why")
    if _lstat(os.path.join(common, "commondir")) is not None:
        raise UsageError(
            f"{common}/commondir exists: it points git at another directory's config and "
            "hooks (a worker may have planted it)",
            hint=f"look at it; remove it if you did not make it: rm {common}/commondir",
        )
    st = os.lstat(root)
    return Repo(root, common, root, common, (st.st_uid, st.st_gid))


def _linked(work_tree: str) -> Repo:
    gitdir = read_gitfile(work_tree)
    head, sep, ident = (gitdir or "").rpartition("/.git/worktrees/")
    if not sep or not ident or "/" in ident or ident.startswith("."):
        raise UsageError(
            f"{work_tree}/.git does not point into a repository's .git/worktrees (a submodule?)",
            hint="run it in the repository's main checkout",
        )
    main = _main(head)
    if not _real_dir(os.path.join(main.common, "worktrees", ident)):
        raise UsageError(f"{work_tree} is not a worktree of {head} (its admin directory is gone)")
    return Repo(main.root, main.common, work_tree, f"{main.common}/worktrees/{ident}", main.owner)


def task_repo(worktree: str) -> tuple[TaskPath, Repo] | None:
    """The task and its repository when `worktree` is a task's worktree, as hal-9000 made
    it: `<root>/.hal9000/tasks/<name>`, a linked worktree of `<root>`'s own `.git`."""
    task = task_of(worktree)
    if task is None or _lstat(os.path.join(worktree, ".git")) is None:
        return None
    try:
        repo = _linked(worktree)
    except UsageError:
        return None
    if repo.root != task.repo:
        return None
    return task, repo
