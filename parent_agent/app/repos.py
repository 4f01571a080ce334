"""Repositories that travel by git (`hal_common/gitsync.py`): what the parent does with a
bundle claudy sends (`hal-agent repo receive`), the agent's branch as a bundle for claudy
(`hal-agent repo bundle`), and what the parent holds (`hal-agent repo info`).

The parent's copy of a host repository is `/data/repos/<key>`: its `.git` (nothing is
checked out there) and its tasks' worktrees (`.hal9000/tasks/NAME`, `app/tasks.py`), all
the worker user's, since the agent writes them. A bundle is spooled to a private file
(bounded), checked by `git bundle verify` and `list-heads` (exactly the one branch it should
hold), then fetched fast-forward only into that one ref. Every git runs through
`adapters/git.py` (the repository's owner, no hooks, bounded); git never reaches a remote:
only the spooled file (`protocol.file.allow` for that one fetch).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from hal_common import gitsync, tasks
from hal_common.errors import HalError, UsageError
from hal_common.layout import ParentLayout
from parent_agent.adapters import git
from parent_agent.core.spec import pick_owner

INCOMING = ".incoming"  # root's, 0711: each bundle spooled there in a 0600 file of its own
_FILE_ONLY = ("-c", "protocol.file.allow=always")  # the spooled bundle, no other transport


@dataclass(frozen=True)
class Received:
    branch: str
    old: str  # "" when the branch is new
    new: str
    created: bool  # the repository was made by this receive

    def words(self) -> str:
        if self.old == self.new:
            return f"{self.branch} is up to date at {self.new[:12]}"
        what = f"{self.old[:12]}..{self.new[:12]}" if self.old else f"at {self.new[:12]}"
        return f"{self.branch} {'new' if not self.old else 'updated'} {what}"


def path_of(layout: ParentLayout, key: str) -> str:
    return str(layout.repos_dir / gitsync.check_key(key))


def owner_of(layout: ParentLayout) -> tuple[int, int]:
    """Who owns a travelled repository: the uid its workers run as (they write it)."""
    return pick_owner(layout.host_uid, layout.host_gid, 0, 0)


def repo(layout: ParentLayout, key: str) -> git.Repo | None:
    """The parent's copy of `key`, or None when none came yet."""
    root = path_of(layout, key)
    if not os.path.isdir(os.path.join(root, ".git")):
        return None
    found = git.find_repo(root)
    if found is None or found.root != root:
        raise HalError(f"{root} is not the repository it should be", hint="look at it")
    return found


def ensure_repo(layout: ParentLayout, key: str) -> tuple[git.Repo, bool]:
    """The parent's copy of `key`, made (empty, the workers' owner's) when missing."""
    found = repo(layout, key)
    if found is not None:
        return found, False
    root = path_of(layout, key)
    owner = owner_of(layout)
    os.makedirs(layout.repos_dir, mode=0o755, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(root, 0o755)
    os.chown(root, *owner)
    git.ok(None, ["init", "-q", "--template=", root], "making the repository", owner=owner)
    made = repo(layout, key)
    if made is None:
        raise HalError(f"git init made no repository at {root}")
    return made, True


@contextlib.contextmanager
def spooled(
    layout: ParentLayout, stream: BinaryIO, owner: tuple[int, int], limit: int
) -> Iterator[str]:
    """`stream` written to a private file (the owner's, 0600), at most `limit` bytes: a
    bigger one is refused and nothing of it kept. Removed at the end."""
    incoming = layout.repos_dir / INCOMING
    os.makedirs(incoming, mode=0o711, exist_ok=True)
    os.chmod(incoming, 0o711)  # noqa: S103 - traversable only: the files in it are 0600
    fd, path = tempfile.mkstemp(prefix="bundle-", dir=incoming)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise UsageError(
                        f"the bundle is bigger than {limit >> 20} MiB: refused, nothing fetched",
                        hint="a repository this big is better opened on a local engine",
                    )
                out.write(chunk)
        if size == 0:
            raise UsageError("no bundle arrived on stdin", hint="claudy sends it")
        os.chown(path, *owner)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def heads_of(r: git.Repo, bundle: str) -> tuple[gitsync.Head, ...]:
    """A bundle checked (`git bundle verify`: its form, its prerequisites present) and its
    heads, each of a form git would name."""
    git.ok(r, ["bundle", "verify", "--quiet", bundle], "the bundle does not verify", timeout=300)
    listed = git.ok(r, ["bundle", "list-heads", bundle], "listing the bundle", limit=1 << 16)
    return gitsync.parse_heads(listed.out.decode(errors="replace"))


def receive(
    layout: ParentLayout,
    key: str,
    branch: str,
    stream: BinaryIO,
    limit: int = gitsync.BUNDLE_MAX,
) -> Received:
    """A bundle of the user's `branch` (on `stream`) into the parent's copy of `key`:
    fast-forward only; the repository made on the first one, its HEAD that branch."""
    gitsync.check_branch(branch)
    ref = f"refs/heads/{branch}"
    r, created = ensure_repo(layout, key)
    with spooled(layout, stream, r.owner, limit) as bundle:
        head = gitsync.only_ref(heads_of(r, bundle), ref)
        old = _tip(r, ref)
        res = git.run(
            r,
            [*_FILE_ONLY, "fetch", "--no-tags", "--no-write-fetch-head",
             "--update-head-ok", "--", bundle, f"{ref}:{ref}"],
            timeout=600,
        )  # fmt: skip
    if res.code != 0:
        if "non-fast-forward" in res.err or "rejected" in res.err:
            raise UsageError(
                f"{branch} in the parent is at {old[:12]}, which is not in your {branch}: "
                "refused (not a fast-forward), nothing changed",
                hint=f"rebase or merge your {branch} on the parent's (claudy pull brings the "
                "agents' branches) and push again",
            )
        said = res.err.splitlines()[-1] if res.err else f"exit code {res.code}"
        raise HalError(f"fetching the bundle: {said}")
    if created or _symbolic_head(r) is None:
        git.ok(r, ["symbolic-ref", "HEAD", ref], "setting HEAD")
    return Received(branch, old, head.commit, created)


def _tip(r: git.Repo, ref: str) -> str:
    res = git.run(r, ["rev-parse", "--verify", "-q", ref])
    return res.text if res.code == 0 and tasks.is_commit(res.text) else ""


def _in_history(r: git.Repo, commit: str, tip: str) -> bool:
    """`commit` is here and an ancestor of `tip`."""
    return git.run(r, ["merge-base", "--is-ancestor", commit, tip], timeout=60).code == 0


def _symbolic_head(r: git.Repo) -> str | None:
    res = git.run(r, ["symbolic-ref", "-q", "HEAD"])
    if res.code != 0 or not res.text.startswith("refs/heads/"):
        return None
    return res.text if _tip(r, res.text) else None


@dataclass(frozen=True)
class Info:
    key: str
    path: str
    exists: bool
    base: str = ""  # the branch claudy sent (HEAD's)
    base_commit: str = ""
    tasks: tuple[tuple[str, str], ...] = ()  # (task, its branch's commit)
    branches: tuple[tuple[str, str], ...] = ()  # the user's branches sent: (name, commit)

    def json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "path": self.path,
            "exists": self.exists,
            "base": self.base,
            "base_commit": self.base_commit,
            "tasks": dict(self.tasks),
            "branches": dict(self.branches),
        }


def info(layout: ParentLayout, key: str) -> Info:
    r = repo(layout, key)
    path = path_of(layout, key)
    if r is None:
        return Info(key, path, False)
    head = _symbolic_head(r) or ""
    listed = git.ok(
        r,
        ["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/"],
        "listing the branches",
        limit=1 << 20,
    )
    found, branches = [], []
    for line in listed.text.splitlines():
        commit, _, ref = line.partition(" refs/heads/")
        if not tasks.is_commit(commit) or not ref:
            continue
        if ref.startswith(tasks.BRANCH_PREFIX):
            found.append((ref.removeprefix(tasks.BRANCH_PREFIX), commit))
        else:
            branches.append((ref, commit))
    base = head.removeprefix("refs/heads/")
    return Info(key, path, True, base, _tip(r, head) if head else "", tuple(found), tuple(branches))


def bundle(
    layout: ParentLayout, key: str, name: str, out: BinaryIO, have: tuple[str, ...] = ()
) -> int:
    """Task `name`'s branch `hal/NAME` as a bundle, written to `out`; its size. Made by
    git (as the owner, no hooks) into a private file, then copied out. `have`: commits
    claudy holds; those in the branch's history are left out (the bundle then needs them).
    Nothing at all (size 0) when the branch is one of them: claudy is up to date."""
    tasks.check_name(name)
    r = repo(layout, key)
    if r is None:
        raise UsageError(
            f"the parent holds no repository {key}", hint="claudy DIR --task NAME sends it first"
        )
    ref = f"refs/heads/{tasks.branch(name)}"
    if not _tip(r, ref):
        raise UsageError(
            f"the parent's repository has no task {name} (no branch {tasks.branch(name)})",
            hint="hal-agent ls lists the tasks",
        )
    tip = _tip(r, ref)
    if tip in have:
        return 0
    known = [h for h in have if tasks.is_commit(h) and _in_history(r, h, tip)]
    incoming = layout.repos_dir / INCOMING
    os.makedirs(incoming, mode=0o711, exist_ok=True)
    spool = tempfile.mkdtemp(prefix="out-", dir=incoming)
    try:
        os.chown(spool, *r.owner)
        path = os.path.join(spool, "b.bundle")
        spec = [ref, *(f"^{h}" for h in known)]
        git.ok(r, ["bundle", "create", "-q", path, *spec], "making the bundle", timeout=600)
        with open(path, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
            size = f.tell()
        out.flush()
        return size
    finally:
        shutil.rmtree(spool, ignore_errors=True)
