"""Tasks on worktrees: make one (`spawn DIR --task NAME`), say where its worker's git lives,
how far it got (`ls`), what it changed (`diff`), and remove it (`rm`).

Every git here runs through `adapters/git.py` (the repository's owner, no hooks, no
fsmonitor, no external tools, bounded); every path through the path policy first.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hal_common import tasks
from hal_common.errors import HalError, UsageError
from hal_common.layout import ParentLayout
from hal_common.projects import PathPolicy, check_project
from parent_agent.adapters import git, untrusted
from parent_agent.core.listing import GitState

log = logging.getLogger(__name__)

COPY_LIMIT = 16 << 20  # bytes of one file `[worker] copy` copies into a new worktree


@dataclass(frozen=True)
class Task:
    """A task's worktree as the parent made (or found) it."""

    name: str
    repo: git.Repo  # work_tree: the task's worktree
    base: str  # the commit it started from ("" when not known)

    @property
    def path(self) -> str:
        return self.repo.work_tree

    @property
    def branch(self) -> str:
        return tasks.branch(self.name)


@dataclass(frozen=True)
class GitMounts:
    """What of the repository a worker mounts beyond its project: `rw` (a task's common
    `.git`; a main checkout's own `.git`, so that it cannot be renamed away) and `ro` (its
    config and hooks; a task's `.git` file and its admin directory's pointers)."""

    rw: tuple[str, ...] = ()
    ro: tuple[str, ...] = ()


def repo_of(directory: str, policy: PathPolicy) -> git.Repo:
    """The repository DIRECTORY (a project the policy allowed) lies in, its root allowed too
    (a task's worker mounts the root's `.git`); UsageError when there is none."""
    found = git.find_repo(directory)
    if found is None:
        raise UsageError(
            f"{directory} is not in a git repository, so it cannot have tasks",
            hint=f"`git init` there first, or open it without --task: claudy {directory}",
        )
    try:
        check_project(found.root, policy)
    except UsageError as e:
        raise UsageError(
            f"{directory}'s repository {found.root} cannot be a project: {e.message}", e.hint
        ) from None
    return found


def ensure(
    directory: str, name: str, from_ref: str | None, policy: PathPolicy, copy: Iterable[str] = ()
) -> Task:
    """Task `name` of DIRECTORY's repository: its worktree made (branch `hal/NAME` from HEAD
    or `from_ref`) or found as it was. Refuses a name or ref git would not take, a branch
    checked out elsewhere, and a folder in the way that is not this task's worktree."""
    tasks.check_name(name)
    if from_ref is not None:
        tasks.check_ref(from_ref)
    main = repo_of(directory, policy)
    path = tasks.worktree(main.root, name)
    root = main_of(main)
    branch = tasks.branch(name)
    listed = worktrees(root)
    if path in listed:
        if listed[path] != f"refs/heads/{branch}":
            raise UsageError(
                f"{path} is a worktree on {listed[path] or 'a detached HEAD'}, not {branch}",
                hint=f"switch it back (git -C {path} switch {branch}) or remove it",
            )
        found = open_task(path)
        if from_ref is not None:
            log.warning("task %s exists: --from %s is ignored", name, from_ref)
        return found
    if os.path.lexists(path):
        raise UsageError(
            f"{path} is in the way: it is not a worktree of {main.root}",
            hint="move it away, or pick another task name",
        )
    for where, ref in listed.items():
        if ref == f"refs/heads/{branch}":
            raise UsageError(
                f"branch {branch} is checked out at {where}",
                hint=f"pick another task name, or free the branch (git -C {where} switch -)",
            )
    exclude(root)
    exists = git.run(root, ["rev-parse", "--verify", "-q", f"refs/heads/{branch}"]).code == 0
    start = from_ref or "HEAD"
    base = _commit(root, start)
    if exists:  # a branch kept by `rm`: the task goes on from where it was
        git.ok(root, ["worktree", "add", path, branch], f"making task {name}")
        met = git.run(root, ["merge-base", branch, base])
        base = met.text if met.code == 0 and tasks.is_commit(met.text) else base
    else:
        git.ok(
            root,
            ["worktree", "add", "--no-track", "-b", branch, path, base],
            f"making task {name}",
        )
    made = open_task(path, base)
    copy_files(main.root, path, copy, main.owner)
    return made


def _commit(root: git.Repo, ref: str) -> str:
    res = git.run(root, ["rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}"])
    if res.code != 0 or not tasks.is_commit(res.text):
        if ref == "HEAD":
            raise UsageError(
                f"{root.root} has no commit yet, so a task has nothing to start from",
                hint="make a first commit, or give --from REF",
            )
        raise UsageError(f"--from {ref}: no such commit in {root.root}", hint="git log lists them")
    return res.text


def open_task(path: str, base: str = "") -> Task:
    """The task whose worktree `path` is (hal-9000's layout), or UsageError."""
    found = git.task_repo(path)
    if found is None:
        raise UsageError(f"{path} is not a task's worktree")
    task, repo = found
    return Task(task.name, repo, base)


def guess_base(repo: git.Repo) -> str:
    """Where a task's branch meets the main checkout's HEAD: its base when no record says
    it (its worker was removed and is made again); "" when git cannot say."""
    try:
        main = git.run(main_of(repo), ["rev-parse", "--verify", "-q", "HEAD"], timeout=5)
        found = git.run(repo, ["merge-base", "HEAD", main.text], timeout=5)
    except HalError:
        return ""
    if main.code != 0 or found.code != 0 or not tasks.is_commit(found.text):
        return ""
    return found.text


def main_of(repo: git.Repo) -> git.Repo:
    """The main checkout of `repo`'s repository."""
    return git.Repo(repo.root, repo.common, repo.root, repo.common, repo.owner)


def worktrees(root: git.Repo) -> dict[str, str]:
    """The repository's worktrees: path → the ref checked out ("" when detached)."""
    res = git.ok(root, ["worktree", "list", "--porcelain", "-z"], "listing worktrees")
    found: dict[str, str] = {}
    current = ""
    for field in res.out.decode(errors="replace").split("\0"):
        if field.startswith("worktree "):
            current = field[len("worktree ") :]
            found[current] = ""
        elif field.startswith("branch ") and current:
            found[current] = field[len("branch ") :]
    return found


def exclude(root: git.Repo) -> None:
    """`.hal9000/` listed in the repository's `.git/info/exclude` (the worktrees inside the
    repository are then no untracked files of it). Written as the repository's owner."""
    with untrusted.directory(Path(root.common)) as top:
        untrusted.ensure_dir(top, "info", root.owner)
        fd = untrusted.open_dir(top, "info")
        try:
            text = (untrusted.read(fd, "exclude", 1 << 20) or b"").decode(errors="replace")
            new = tasks.with_exclude(text)
            if new is not None:
                untrusted.write(fd, "exclude", new.encode(), root.owner, 0o644)
        finally:
            os.close(fd)


def copy_files(root: str, worktree: str, names: Iterable[str], owner: tuple[int, int]) -> None:
    """`[worker] copy`: each listed untracked file of the main checkout into the new
    worktree, at the same relative path. Only regular files; a symlink anywhere on the way
    (in or out of the repository) is never followed: that entry is skipped and said."""
    for rel in names:
        parts = PurePosixPath(rel).parts
        try:
            with untrusted.directory(
                Path(root), PurePosixPath(*parts[:-1]) if parts[:-1] else ""
            ) as src:
                data = untrusted.read(src, parts[-1], COPY_LIMIT)
                mode = (
                    untrusted.lstat(src, parts[-1]) or os.stat_result((0o600,) + (0,) * 9)
                ).st_mode
            if data is None:
                log.info("copy: %s is not in %s, not copied", rel, root)
                continue
            where = PurePosixPath(*parts[:-1]) if parts[:-1] else ""
            with untrusted.directory(Path(worktree), where, create=True, owner=owner) as dst:
                untrusted.write(dst, parts[-1], data, owner, stat.S_IMODE(mode) & 0o755 | 0o600)
        except FileNotFoundError:
            log.info("copy: %s is not in %s, not copied", rel, root)
        except OSError as e:
            log.warning("copy: %s not copied: %s", rel, e)


# --- what a worker mounts ------------------------------------------------------------------


def git_mounts(project: str) -> GitMounts:
    """The git a worker of `project` gets, and what of it stays read-only. A task's worktree
    mounts its repository's common `.git` (at the same path: its `.git` file points there);
    a main checkout's `.git` is mounted onto itself. Either way `config` and `hooks` are
    read-only (a worker cannot plant a hook or an fsmonitor that later runs on the host),
    and a task's `.git` file and its `commondir`/`gitdir` too (a worker cannot point the
    host's git elsewhere); a main checkout's `.git/worktrees` and `.hal9000` (its tasks'
    worktrees, when there are any) as well. Any other project mounts nothing more. Each
    path is checked here, just before the create: a real file or directory, no symlink on
    the way."""
    found = git.task_repo(project)
    if found is not None:
        _, repo = found
        admin = repo.git_dir
        ro = [_config(repo), _hooks(repo), f"{project}/.git"]
        ro += [f"{admin}/{n}" for n in ("commondir", "gitdir") if os.path.lexists(f"{admin}/{n}")]
        return _checked(GitMounts((repo.common,), tuple(ro)))
    dot = f"{project}/.git"
    st = _lstat(dot)
    if st is None or not stat.S_ISDIR(st.st_mode) or _lstat(f"{dot}/HEAD") is None:
        return GitMounts()  # no repository of its own (a `.git` a worker made is not one)
    repo = git.Repo(project, dot, project, dot, (st.st_uid, st.st_gid))
    ro = [_config(repo), _hooks(repo), _made(repo, "worktrees")]
    # the tasks' worktrees and their admin directories: another worker's, not this one's
    # to write (nor to point the host's git elsewhere from)
    tasks_dir = f"{project}/{tasks.HAL_DIR}"
    if _real_dir(tasks_dir):
        ro.append(tasks_dir)
    return _checked(GitMounts((dot,), tuple(ro)))


def _real_dir(path: str) -> bool:
    st = _lstat(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _config(repo: git.Repo) -> str:
    """`.git/config`, made (empty, the owner's) when missing: a worker must not make it."""
    with untrusted.directory(Path(repo.common)) as top:
        untrusted.ensure_file(top, "config", b"", repo.owner, 0o644)
    return f"{repo.common}/config"


def _hooks(repo: git.Repo) -> str:
    """`.git/hooks`, made (empty, the owner's) when missing: a worker must not make it."""
    return _made(repo, "hooks")


def _made(repo: git.Repo, name: str) -> str:
    """`.git/NAME`, a directory made (empty, the owner's) when missing."""
    with untrusted.directory(Path(repo.common)) as top:
        untrusted.ensure_dir(top, name, repo.owner)
    return f"{repo.common}/{name}"


def _checked(m: GitMounts) -> GitMounts:
    for path in (*m.rw, *m.ro):
        st = _lstat(path)
        if st is None or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise HalError(
                f"cannot mount {path} into the worker: not a file or directory (a symlink?)",
                hint="look at it: a worker may have replaced it; git would follow it too",
            )
        if os.path.realpath(path) != path:
            raise HalError(
                f"cannot mount {path} into the worker: a symlink lies on the way",
                hint="look at it: a worker may have replaced a directory with a link",
            )
    return m


# --- how far a worker got ------------------------------------------------------------------


def project_repo(project: str) -> git.Repo | None:
    """The repository to ask about `project`: a task's worktree, or a main checkout whose
    root is the project itself; None for anything else."""
    found = git.task_repo(project)
    if found is not None:
        return found[1]
    st = _lstat(f"{project}/.git")
    if st is None or not stat.S_ISDIR(st.st_mode):
        return None
    try:
        return git._main(project)
    except UsageError:
        return None


def state_of(project: str, base: str = "") -> GitState | None:
    """`project`'s branch, how many commits it has past `base`, whether it has uncommitted
    changes (untracked files count: `rm` would lose them). None when it is no repository or
    git fails (said in the log)."""
    repo = project_repo(project)
    if repo is None:
        return None
    try:
        head = git.run(repo, ["symbolic-ref", "-q", "--short", "HEAD"], timeout=5)
        branch = head.text if head.code == 0 and head.text else None
        status = git.ok(
            repo,
            ["status", "--porcelain=v1", "-z", "--untracked-files=normal"],
            "status",
            timeout=10,
            limit=1 << 16,
        )
        ahead = None
        if base and tasks.is_commit(base):
            counted = git.run(repo, ["rev-list", "--count", f"{base}..HEAD"], timeout=5)
            ahead = int(counted.text) if counted.code == 0 and counted.text.isdigit() else None
    except HalError as e:
        log.warning("git state of %s: %s", project, e.message)
        return None
    return GitState(repo.root, branch, base or None, ahead, bool(status.out))


# --- what a task changed ------------------------------------------------------------------


DIFF_LIMIT = 16 << 20
UNTRACKED_MAX = 200


@dataclass(frozen=True)
class Diff:
    head: str  # what is shown, against what (a few lines, no colour)
    body: bytes  # git's diff, in colour when asked
    cut: bool = False


def diff(project: str, base: str, color: bool, stat_only: bool = False) -> Diff:
    """The changes in `project` against `base` (a task's start; HEAD for a plain project):
    committed and uncommitted ones of tracked files, then each untracked file as new."""
    repo = project_repo(project)
    if repo is None:
        raise UsageError(f"{project} is not a git repository: there is nothing to diff")
    against = base if tasks.is_commit(base) else "HEAD"
    flags = ["--no-ext-diff", "--no-textconv", f"--color={'always' if color else 'never'}"]
    if stat_only:
        flags.append("--stat")
    body = git.ok(repo, ["diff", *flags, against, "--"], "diff", limit=DIFF_LIMIT, timeout=60)
    chunks, cut = [body.out], body.cut
    untracked = git.ok(
        repo,
        ["ls-files", "-z", "--others", "--exclude-standard"],
        "untracked files",
        limit=1 << 20,
    )
    names = [n for n in untracked.out.decode(errors="replace").split("\0") if n]
    size = len(body.out)
    for name in names[:UNTRACKED_MAX]:
        if size >= DIFF_LIMIT:
            cut = True
            break
        one = git.run(
            repo,
            ["diff", "--no-index", *flags, "--", "/dev/null", name],
            limit=DIFF_LIMIT - size,
            timeout=20,
        )
        chunks.append(one.out)
        size += len(one.out)
        cut = cut or one.cut
    ahead = ""
    if against != "HEAD":
        count = git.run(repo, ["rev-list", "--count", f"{against}..HEAD"], timeout=5).text
        ahead = f", {count} commit(s) on it" if count.isdigit() else ""
    task = tasks.task_of(project)
    what = f"task {task.name} (branch {tasks.branch(task.name)})" if task else project
    lines = [
        f"# {what}: changes against {'its base ' + against[:12] if against != 'HEAD' else 'HEAD'}"
        f"{ahead}",
        "# committed and uncommitted changes of tracked files"
        + (f", then {len(names)} untracked file(s) as new" if names else "; no untracked files"),
    ]
    if len(names) > UNTRACKED_MAX:
        lines.append(f"# only the first {UNTRACKED_MAX} untracked files are shown")
    return Diff("\n".join(lines) + "\n", b"".join(chunks), cut)


# --- removing a task ------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    """What removing a task would lose: uncommitted changes (`git status` lines) and, when
    its branch goes too, commits no other ref holds (`git log --oneline` lines)."""

    changes: tuple[str, ...]
    commits: tuple[str, ...]

    def words(self) -> str:
        parts = []
        if self.changes:
            parts.append(
                f"{len(self.changes)} uncommitted change(s) ({', '.join(self.changes[:5])}"
                + (", …" if len(self.changes) > 5 else "")
                + ")"
            )
        if self.commits:
            parts.append(
                f"{len(self.commits)} commit(s) that no other branch or tag holds ("
                + "; ".join(self.commits[:3])
                + ("; …" if len(self.commits) > 3 else "")
                + ")"
            )
        return " and ".join(parts)


def loss(task: Task, delete_branch: bool, copied: Iterable[str] = ()) -> Loss:
    """What removing `task` (and its branch, `delete_branch`) would lose. An untracked file
    `[worker] copy` lists (`copied`) that is the same as the main checkout's is no loss."""
    status = git.ok(
        task.repo,
        ["status", "--porcelain=v1", "--untracked-files=all"],
        "status",
        limit=1 << 20,
    )
    lines = status.out.decode(errors="replace").splitlines()
    copies = {c for c in copied if line_is_copy(task, c)}
    changes = tuple(
        line[3:]
        for line in lines
        if line.strip() and not (line[:3] == "?? " and line[3:] in copies)
    )
    commits: tuple[str, ...] = ()
    if delete_branch:
        # every branch, tag and remote branch but this one (not --all: it takes each
        # worktree's HEAD, this task's own among them)
        res = git.ok(
            task.repo,
            ["log", "--oneline", "--no-decorate", "--max-count=50", f"refs/heads/{task.branch}",
             "--not", f"--exclude={task.branch}", "--branches", "--tags", "--remotes"],
            "commits only on the task's branch",
        )  # fmt: skip
        commits = tuple(line for line in res.text.splitlines() if line.strip())
    return Loss(changes, commits)


def line_is_copy(task: Task, rel: str) -> bool:
    """`rel` in the task's worktree has the bytes of the main checkout's (read without
    following links, bounded)."""
    try:
        mine = untrusted.read_file(Path(task.path), rel, COPY_LIMIT)
        theirs = untrusted.read_file(Path(task.repo.root), rel, COPY_LIMIT)
    except (OSError, ValueError):
        return False
    return mine is not None and mine == theirs


def remove(task: Task, delete_branch: bool) -> None:
    """The worktree goes (its files, its admin directory); the branch too when asked."""
    root = main_of(task.repo)
    git.ok(root, ["worktree", "remove", "--force", "--force", task.path], f"removing {task.path}")
    if delete_branch:
        git.ok(root, ["branch", "-D", "--", task.branch], f"deleting branch {task.branch}")


def policy(layout: ParentLayout) -> PathPolicy:
    return PathPolicy.of_parent(layout)
