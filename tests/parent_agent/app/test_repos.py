"""Repositories that travel by git, the parent's side, against a real git (no engine): a
bundle received (verified, one branch, fast-forward only, bounded), a task made on it, the
agent's branch bundled back; and nothing of the repository's own runs."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal_common import gitsync
from hal_common.errors import HalError, UsageError
from hal_common.layout import ParentLayout
from hal_common.projects import PathPolicy
from hal_testing.engine import GID, UID
from parent_agent.app import repos, tasks

ID = ["-c", "user.email=t@example.com", "-c", "user.name=T", "-c", "safe.directory=*"]
KEY = gitsync.repo_key("/home/u/app")


def sh_git(repo: Path | str, *args: str) -> str:
    return subprocess.run(
        ["git", *ID, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def layout() -> Iterator[ParentLayout]:
    # a data volume any uid can reach (git runs as the repository's owner)
    top = tempfile.mkdtemp(prefix="hal-repos-")
    os.chmod(top, 0o755)  # noqa: S103 - the owner git runs as must reach it
    try:
        yield ParentLayout(data_dir=Path(top), host_uid=UID, host_gid=GID)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def local(tmp_path: Path) -> Path:
    r = tmp_path / "app"
    r.mkdir()
    sh_git(r, "init", "-q", "-b", "main")
    (r / "README").write_text("hello\n")
    sh_git(r, "add", "README")
    sh_git(r, "commit", "-qm", "first")
    return r


def bundle_of(repo: Path, *refs: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(repo), "bundle", "create", "-q", "-", *refs],
        check=True,
        capture_output=True,
    ).stdout


def test_a_bundle_becomes_the_parents_repository_and_a_task_works_on_it(
    layout: ParentLayout, local: Path
) -> None:
    got = repos.receive(layout, KEY, "main", io.BytesIO(bundle_of(local, "refs/heads/main")))
    assert got.created and got.new == sh_git(local, "rev-parse", "HEAD")
    root = repos.path_of(layout, KEY)
    assert os.stat(root).st_uid == UID  # the workers' to write
    assert sh_git(root, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert not os.listdir(f"{root}/.git/hooks") if os.path.isdir(f"{root}/.git/hooks") else True
    # the task model works on it unchanged: the path policy lets the repos in
    policy = PathPolicy.of_parent(layout)
    t = tasks.ensure(root, "fix", None, policy)
    assert t.path == f"{root}/.hal9000/tasks/fix"
    assert (Path(t.path) / "README").read_text() == "hello\n"
    assert os.stat(t.path).st_uid == UID
    # the agent commits on its branch; the bundle back holds exactly hal/fix
    (Path(t.path) / "fix.txt").write_text("fixed\n")
    sh_git(t.path, "add", "fix.txt")
    sh_git(t.path, "commit", "-qm", "the fix")
    out = io.BytesIO()
    assert repos.bundle(layout, KEY, "fix", out) > 0
    spool = Path(tempfile.mkdtemp()) / "b.bundle"
    spool.write_bytes(out.getvalue())
    heads = gitsync.parse_heads(sh_git(local, "bundle", "list-heads", str(spool)))
    assert [h.ref for h in heads] == ["refs/heads/hal/fix"]
    # what the receiver holds is left out: a thin bundle, or none when it is up to date
    thin = io.BytesIO()
    assert 0 < repos.bundle(layout, KEY, "fix", thin, (t.base,)) < len(out.getvalue())
    assert (
        repos.bundle(layout, KEY, "fix", io.BytesIO(), (sh_git(t.path, "rev-parse", "HEAD"),)) == 0
    )
    assert repos.bundle(layout, KEY, "fix", io.BytesIO(), ("0" * 40, "not-a-commit")) > 0
    info = repos.info(layout, KEY)
    assert info.base == "main" and dict(info.tasks)["fix"] == sh_git(t.path, "rev-parse", "HEAD")


def test_a_push_is_fast_forward_only(layout: ParentLayout, local: Path) -> None:
    repos.receive(layout, KEY, "main", io.BytesIO(bundle_of(local, "refs/heads/main")))
    first = sh_git(local, "rev-parse", "HEAD")
    (local / "more").write_text("more\n")
    sh_git(local, "add", "more")
    sh_git(local, "commit", "-qm", "second")
    thin = bundle_of(local, "refs/heads/main", f"^{first}")  # only the new commit
    got = repos.receive(layout, KEY, "main", io.BytesIO(thin))
    assert (got.old, got.new) == (first, sh_git(local, "rev-parse", "HEAD"))
    assert "updated" in got.words()
    sh_git(local, "reset", "-q", "--hard", first)
    (local / "other").write_text("x\n")
    sh_git(local, "add", "other")
    sh_git(local, "commit", "-qm", "rewritten")
    with pytest.raises(UsageError, match="not a fast-forward"):
        repos.receive(layout, KEY, "main", io.BytesIO(bundle_of(local, "refs/heads/main")))
    assert repos.info(layout, KEY).base_commit == got.new  # nothing changed


def test_a_bundle_must_hold_the_one_branch_it_names(layout: ParentLayout, local: Path) -> None:
    sh_git(local, "branch", "hal/evil")
    with pytest.raises(HalError, match="exactly refs/heads/main"):
        repos.receive(layout, KEY, "main", io.BytesIO(bundle_of(local, "--all")))
    with pytest.raises(HalError, match="exactly refs/heads/dev"):
        repos.receive(layout, KEY, "dev", io.BytesIO(bundle_of(local, "refs/heads/main")))
    with pytest.raises(UsageError, match="cannot be sent"):
        repos.receive(layout, KEY, "hal/x", io.BytesIO(b"x"))
    with pytest.raises(HalError, match="does not verify"):
        repos.receive(layout, KEY, "main", io.BytesIO(b"# v2 git bundle\nnot one\n"))
    with pytest.raises(UsageError, match="bigger than"):
        repos.receive(layout, KEY, "main", io.BytesIO(b"x" * (3 << 20)), limit=2 << 20)
    assert not os.listdir(layout.repos_dir / repos.INCOMING)  # nothing spooled stays


def test_keys_and_names(layout: ParentLayout) -> None:
    assert gitsync.repo_key("/home/u/My App").startswith("my-app-")
    assert gitsync.check_key(gitsync.repo_key("/home/u/My App"))
    assert gitsync.repo_key("/a/app") != gitsync.repo_key("/b/app")
    for bad in ("../x", "x", "/data", "A-0123456789abcdef", "x-0123456789abcdeg"):
        with pytest.raises(UsageError):
            repos.path_of(layout, bad)
    assert gitsync.task_for_branch("feature/Login") == "feature-login"
    assert gitsync.task_for_branch(None) == "main"
    assert gitsync.task_for_branch("---") == "main"
    assert gitsync.task_for_branch("x.lock") == "x"
    with pytest.raises(HalError):
        gitsync.parse_heads("0" * 40 + " refs/heads/a b\n")
    with pytest.raises(UsageError):
        repos.bundle(layout, KEY, "fix", io.BytesIO())
    # the repos are a project only inside: never the folder itself, nor the data volume
    policy = PathPolicy.of_parent(layout)
    from hal_common.projects import check_project

    assert check_project(f"{layout.repos_dir}/{KEY}", policy)
    for bad in (str(layout.repos_dir), str(layout.data_dir)):
        with pytest.raises(UsageError):
            check_project(bad, policy)
