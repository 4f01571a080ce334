"""Tasks on worktrees against a real git (no engine): making one, finding it again, what a
worker mounts, how far it got, what it changed, removing it; and that the parent's git runs
nothing of the repository's own (hooks, fsmonitor, external diff)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from hal_common import tasks as names
from hal_common.errors import UsageError
from hal_common.projects import PathPolicy
from hal_testing.engine import GID, UID
from parent_agent.adapters import git
from parent_agent.app import tasks

ID = ["-c", "user.email=t@example.com", "-c", "user.name=T"]


def sh_git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *ID, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "projects"
    r.mkdir()
    return r


@pytest.fixture
def policy(root: Path) -> PathPolicy:
    return PathPolicy((str(root),), "/nonexistent-home")


@pytest.fixture
def repo(root: Path) -> Path:
    r = root / "app"
    r.mkdir()
    sh_git(r, "init", "-q", "-b", "main")
    (r / "README").write_text("hello\n")
    sh_git(r, "add", "README")
    sh_git(r, "commit", "-qm", "first")
    return r


def test_names_are_ref_and_path_safe() -> None:
    for good in ("fix", "fix-1", "a.b_c", "x" * 32):
        assert names.check_name(good) == good
    for bad in ("", "-x", "Fix", "a/b", "a..b", "x.lock", "x.", "x" * 33, "a b", ".x", "~x"):
        with pytest.raises(UsageError, match="bad task name"):
            names.check_name(bad)
    assert names.task_of("/p/app/.hal9000/tasks/fix") == names.TaskPath("/p/app", "fix")
    assert names.task_of("/p/app/.hal9000/tasks/fix/sub") is None
    assert names.task_of("/p/app/.hal9000/tasks/Bad") is None
    with pytest.raises(UsageError):
        names.check_ref("--upload-pack=x")
    assert names.with_exclude("") == "# hal-9000's task worktrees\n/.hal9000/\n"
    assert names.with_exclude("*.o\n/.hal9000/\n") is None


def test_a_task_is_a_worktree_on_its_own_branch(repo: Path, policy: PathPolicy) -> None:
    t = tasks.ensure(str(repo), "fix", None, policy)
    assert t.path == f"{repo}/.hal9000/tasks/fix"
    assert sh_git(Path(t.path), "rev-parse", "--abbrev-ref", "HEAD") == "hal/fix"
    assert t.base == sh_git(repo, "rev-parse", "HEAD")
    assert "/.hal9000/" in (repo / ".git/info/exclude").read_text()
    assert sh_git(repo, "status", "--porcelain") == ""  # the worktree is no untracked file
    again = tasks.ensure(str(repo), "fix", None, policy)  # found again, not made twice
    assert again.path == t.path
    other = tasks.ensure(str(repo / "."), "feature", None, policy)
    assert {p for p in tasks.worktrees(tasks.main_of(other.repo))} >= {t.path, other.path}


def test_from_ref_and_a_kept_branch(repo: Path, policy: PathPolicy) -> None:
    first = sh_git(repo, "rev-parse", "HEAD")
    (repo / "README").write_text("two\n")
    sh_git(repo, "commit", "-qam", "second")
    t = tasks.ensure(str(repo), "old", first, policy)
    assert sh_git(Path(t.path), "rev-parse", "HEAD") == first == t.base
    with pytest.raises(UsageError, match="no such commit"):
        tasks.ensure(str(repo), "nope", "does-not-exist", policy)
    assert not Path(f"{repo}/.hal9000/tasks/nope").exists()
    # a branch kept by rm: a new task of that name goes on from it
    tasks.remove(t, delete_branch=False)
    back = tasks.ensure(str(repo), "old", None, policy)
    assert sh_git(Path(back.path), "rev-parse", "HEAD") == first


def test_refusals_say_why(root: Path, repo: Path, policy: PathPolicy) -> None:
    plain = root / "plain"
    plain.mkdir()
    with pytest.raises(UsageError, match="not in a git repository"):
        tasks.ensure(str(plain), "fix", None, policy)
    with pytest.raises(UsageError, match="bad task name"):
        tasks.ensure(str(repo), "../../x", None, policy)
    sh_git(repo, "branch", "hal/busy")
    sh_git(repo, "worktree", "add", "-q", str(root / "elsewhere"), "hal/busy")
    with pytest.raises(UsageError, match="checked out at"):
        tasks.ensure(str(repo), "busy", None, policy)
    (repo / ".hal9000/tasks/inway").mkdir(parents=True)
    with pytest.raises(UsageError, match="in the way"):
        tasks.ensure(str(repo), "inway", None, policy)
    (repo / ".git/commondir").write_text("/elsewhere\n")  # what a worker could plant
    with pytest.raises(UsageError, match="commondir"):
        tasks.ensure(str(repo), "x", None, policy)


def test_a_repository_outside_the_roots_has_no_tasks(tmp_path: Path, root: Path) -> None:
    """The repository's root is a project too (its .git is mounted): a subdirectory under a
    root of a repository above it is refused."""
    sh_git(tmp_path, "init", "-q")
    (root / "sub").mkdir()
    with pytest.raises(UsageError, match="cannot be a project"):
        tasks.ensure(str(root / "sub"), "fix", None, PathPolicy((str(root),), "/nonexistent"))


def test_the_parent_runs_no_hook_and_no_fsmonitor(repo: Path, policy: PathPolicy) -> None:
    proof = repo.parent / "ran"
    for hook in ("post-checkout", "reference-transaction", "pre-commit"):
        h = repo / ".git/hooks" / hook
        h.write_text(f"#!/bin/sh\necho {hook} >> {proof}\n")
        h.chmod(0o755)
    sh_git(repo, "config", "core.fsmonitor", f"echo fsmonitor >> {proof}; false")
    sh_git(repo, "config", "diff.external", f"sh -c 'echo ext >> {proof}'")
    sh_git(repo, "config", "core.pager", f"sh -c 'echo pager >> {proof}'")
    t = tasks.ensure(str(repo), "fix", None, policy)
    (Path(t.path) / "README").write_text("changed\n")
    tasks.state_of(t.path, t.base)
    tasks.diff(t.path, t.base, color=False)
    tasks.remove(t, delete_branch=True)
    assert not proof.exists(), proof.read_text()


def test_git_is_bounded(tmp_path: Path, repo: Path) -> None:
    main = git.find_repo(str(repo))
    assert main is not None
    res = git.run(main, ["log", "-p"], limit=10)
    assert res.cut and len(res.out) == 10
    slow = tmp_path / "slow-git"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    with pytest.raises(git.GitFailed, match="took over"):
        git.run(main, ["status"], timeout=0.3, git=str(slow))


def test_state_diff_and_loss(repo: Path, policy: PathPolicy) -> None:
    t = tasks.ensure(str(repo), "fix", None, policy)
    wt = Path(t.path)
    clean = tasks.state_of(t.path, t.base)
    assert clean is not None
    assert (clean.repo, clean.branch, clean.ahead, clean.dirty) == (str(repo), "hal/fix", 0, False)
    (wt / "README").write_text("committed\n")
    sh_git(wt, "commit", "-qam", "task work")
    (wt / "README").write_text("uncommitted\n")
    (wt / "new.txt").write_text("untracked\n")
    s = tasks.state_of(t.path, t.base)
    assert s is not None and (s.ahead, s.dirty) == (1, True)
    d = tasks.diff(t.path, t.base, color=False)
    body = d.body.decode()
    assert "-hello" in body and "+uncommitted" in body and "+untracked" in body
    assert "1 untracked file(s)" in d.head and "1 commit(s)" in d.head
    lost = tasks.loss(t, delete_branch=True)
    assert lost.changes and lost.commits and "task work" in lost.words()
    assert not tasks.loss(t, delete_branch=False).commits
    assert tasks.state_of(str(repo)) is not None  # the main checkout: a plain git project
    assert tasks.state_of(str(repo.parent)) is None  # no repository: null fields


def test_remove_keeps_the_branch_unless_told(repo: Path, policy: PathPolicy) -> None:
    t = tasks.ensure(str(repo), "keep", None, policy)
    (Path(t.path) / "f").write_text("x")
    sh_git(Path(t.path), "add", "f")
    sh_git(Path(t.path), "commit", "-qm", "kept work")
    tasks.remove(t, delete_branch=False)
    assert not Path(t.path).exists()
    assert sh_git(repo, "log", "--oneline", "hal/keep").startswith(("",))
    assert "kept work" in sh_git(repo, "log", "--oneline", "hal/keep")
    t2 = tasks.ensure(str(repo), "gone", None, policy)
    tasks.remove(t2, delete_branch=True)
    assert sh_git(repo, "branch", "--list", "hal/gone") == ""


def test_copy_takes_listed_files_and_follows_no_link(
    tmp_path: Path, repo: Path, policy: PathPolicy
) -> None:
    (repo / ".env").write_text("KEY=1\n")
    (repo / "conf").mkdir()
    (repo / "conf/local.toml").write_text("x = 1\n")
    secret = tmp_path / "secret"
    secret.write_text("outside\n")
    (repo / "link.env").symlink_to(secret)
    (repo / "linkdir").symlink_to(tmp_path)
    t = tasks.ensure(
        str(repo),
        "c",
        None,
        policy,
        [".env", "conf/local.toml", "link.env", "linkdir/secret", "missing"],
    )
    wt = Path(t.path)
    assert (wt / ".env").read_text() == "KEY=1\n"
    # an identical copy is no loss for rm; a changed one is
    assert ".env" not in tasks.loss(t, False, [".env", "conf/local.toml"]).changes
    assert ".env" in tasks.loss(t, False).changes
    (wt / ".env").write_text("KEY=2\n")
    assert ".env" in tasks.loss(t, False, [".env"]).changes
    assert (wt / "conf/local.toml").read_text() == "x = 1\n"
    assert not (wt / "link.env").exists() and not (wt / "linkdir").exists()


def test_git_mounts_of_a_task_and_of_a_checkout(repo: Path, policy: PathPolicy) -> None:
    t = tasks.ensure(str(repo), "fix", None, policy)
    m = tasks.git_mounts(t.path)
    assert m.rw == (f"{repo}/.git",)
    assert set(m.ro) == {
        f"{repo}/.git/config", f"{repo}/.git/hooks", f"{t.path}/.git",
        f"{repo}/.git/worktrees/fix/commondir", f"{repo}/.git/worktrees/fix/gitdir",
    }  # fmt: skip
    plain = tasks.git_mounts(str(repo))
    assert plain.rw == (f"{repo}/.git",)
    assert set(plain.ro) == {
        f"{repo}/.git/config", f"{repo}/.git/hooks", f"{repo}/.git/worktrees", f"{repo}/.hal9000"
    }  # fmt: skip
    assert tasks.git_mounts(str(repo.parent)) == tasks.GitMounts()
    # hooks replaced by a link (a worker of the repository could): refused, never mounted
    os.rename(repo / ".git/hooks", repo / ".git/hooks.old")
    (repo / ".git/hooks").symlink_to("/etc")
    with pytest.raises(Exception, match="hooks"):
        tasks.git_mounts(str(repo))


def test_the_parent_runs_git_as_the_owner() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown the repository")
    # a directory the owner can reach (pytest's own are root's, 0700)
    base = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        base.chmod(0o755)
        repo = base / "app"
        repo.mkdir()
        sh_git(repo, "init", "-q")
        (repo / "README").write_text("x\n")
        sh_git(repo, "add", "README")
        sh_git(repo, "commit", "-qm", "first")
        subprocess.run(["chown", "-R", f"{UID}:{GID}", str(repo)], check=True)
        t = tasks.ensure(str(repo), "own", None, PathPolicy((str(base),), "/nonexistent"))
        made = (Path(t.path), Path(t.path) / "README", repo / ".hal9000", repo / ".git/worktrees")
        for p in made:
            st = p.stat()
            assert (st.st_uid, st.st_gid) == (UID, GID), p
    finally:
        shutil.rmtree(base)


def test_a_shared_repositorys_task_is_writable_by_its_group(repo: Path, policy: PathPolicy) -> None:
    """A project shared with the agent's group (what claudy tells a root user to make:
    `chgrp -R 65532 … && chmod -R g+rwX …`) gets task worktrees its group can write too;
    a private one keeps git's usual 022."""
    repo.chmod(0o775)
    shared = Path(tasks.ensure(str(repo), "shared", None, policy).path)
    assert (shared / "README").stat().st_mode & 0o020
    assert shared.stat().st_mode & 0o020 and shared.parent.stat().st_mode & 0o020
    repo.chmod(0o755)
    private = Path(tasks.ensure(str(repo), "private", None, policy).path)
    assert not (private / "README").stat().st_mode & 0o022


def test_a_task_runs_the_standard_image_unless_an_image_was_chosen() -> None:
    """The default worker image (minimal) has no git; a task is git work."""
    from hal_common.config_schema import WorkerConfig

    assert names.task_image(WorkerConfig().image) == "hal9000/worker:standard"
    for chosen in ("hal9000/worker:standard", "hal9000/worker:python", "mine:latest"):
        assert names.task_image(chosen) is None
