"""End to end: tasks on worktrees (issue 15). A real parent through claudy, workers of the
real standard image: two tasks of one repository run side by side, each commits on its own
branch from inside its worker with git; `diff` shows each one's change; `rm` keeps the
branch unless told, and `--delete-branch` (with `--discard` for commits nowhere else)
removes it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hal_common import labels
from hal_common.naming import container_name, session_name
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.engine import GID, UID
from hal_testing.host import HostParent
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

ID = ["-c", "user.email=agent@example.com", "-c", "user.name=Agent"]


def git(repo: Path, *args: str) -> str:
    """git on the host, as the test (root) runs it: the user's own view of the repository."""
    return subprocess.run(
        ["git", "-c", "safe.directory=*", *ID, "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    worker = 'image = "hal9000/worker:standard"\nmemory = "1g"\ncopy = [".env"]\n'
    return host_parents("tasks", worker=worker, extra=NO_BUILTIN_SERVICES)


@pytest.fixture(scope="module")
def repo(env: HostParent) -> Path:
    """A repository of the test user's, with one commit and an untracked `.env`."""
    r = env.project("app")
    git(r, "init", "-q", "-b", "main")
    (r / "README").write_text("hello\n")
    (r / ".gitignore").write_text(".env\n")
    git(r, "add", "README", ".gitignore")
    git(r, "commit", "-qm", "first")
    (r / ".env").write_text("SECRET_FOR_DEV=1\n")
    subprocess.run(["chown", "-R", f"{UID}:{GID}", str(r)], check=True)
    return r


def worktree(repo: Path, name: str) -> Path:
    return repo / ".hal9000" / "tasks" / name


def in_task(env: HostParent, repo: Path, name: str, script: str) -> str:
    """`sh -c SCRIPT` in task `name`'s worker, in its worktree, as the agent runs."""
    container = container_name(session_name(str(worktree(repo, name))))
    return env.inner("exec", "-w", str(worktree(repo, name)), container, "sh", "-c", script)


def ls(env: HostParent) -> list[dict[str, Any]]:
    res = env.claudy("ls", "--json", "--all")
    assert res.returncode == 0, res.stderr + res.stdout
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    validate("ls", rows)
    return rows


def test_two_tasks_side_by_side_each_commit_on_their_branch(env: HostParent, repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    for name in ("one", "two"):
        res = env.claudy("-d", str(repo), "--task", name)
        assert res.returncode == 0, res.stderr + res.stdout
        assert res.stdout.strip() == session_name(str(worktree(repo, name)))
    # both run, each in its own worktree on its own branch; the repository stays clean
    by_task = {w["Config"]["Labels"].get(labels.TASK): w for w in env.inner_workers()}
    assert {"one", "two"} <= set(by_task)
    for name in ("one", "two"):
        w = by_task[name]
        assert w["State"]["Status"] == "running"
        assert w["Config"]["WorkingDir"] == str(worktree(repo, name))
        assert w["Config"]["Labels"][labels.BASE] == base
        assert git(worktree(repo, name), "rev-parse", "--abbrev-ref", "HEAD") == f"hal/{name}"
        assert (worktree(repo, name) / ".env").read_text() == "SECRET_FOR_DEV=1\n"  # copy
    assert git(repo, "status", "--porcelain") == ""  # .hal9000/ is excluded (info/exclude)
    assert "/.hal9000/" in (repo / ".git/info/exclude").read_text()
    # the agent of each commits with git, from inside its worker
    for name in ("one", "two"):
        in_task(
            env, repo, name,
            f"echo {name} > {name}.txt && git add {name}.txt && "
            f"git {' '.join(ID)} commit -qm 'task {name}' && git log --oneline -1",
        )  # fmt: skip
    assert "task one" in git(repo, "log", "--oneline", "hal/one")
    assert "task two" in git(repo, "log", "--oneline", "hal/two")
    assert "task two" not in git(repo, "log", "--oneline", "hal/one")
    assert git(repo, "rev-parse", "main") == base  # the main checkout's branch is untouched
    # an uncommitted change of task one
    in_task(env, repo, "one", "echo more >> README")
    rows = {r["task"]: r for r in ls(env) if r["task"]}
    for name in ("one", "two"):
        r = rows[name]
        assert (r["repo"], r["branch"], r["base"], r["ahead"]) == (
            str(repo),
            f"hal/{name}",
            base,
            1,
        )
    assert rows["one"]["dirty"] is True and rows["two"]["dirty"] is False
    text = env.claudy("ls", "--all")
    assert "task one on hal/one, 1 ahead, dirty" in text.stdout, text.stdout


def test_diff_shows_each_tasks_change(env: HostParent, repo: Path) -> None:
    one = env.claudy("diff", "one", "--no-pager")
    assert one.returncode == 0, one.stderr + one.stdout
    assert "+one" in one.stdout and "+more" in one.stdout  # committed and uncommitted
    assert "two.txt" not in one.stdout
    assert "1 commit(s)" in one.stdout
    two = env.claudy("diff", session_name(str(worktree(repo, "two"))), "--no-pager")
    assert two.returncode == 0, two.stderr
    assert "+two" in two.stdout and "one.txt" not in two.stdout


def test_rm_keeps_the_branch_unless_told(env: HostParent, repo: Path) -> None:
    # uncommitted work is never lost without --discard, whatever --force says
    refused = env.claudy("rm", "one", "--force")
    assert refused.returncode == 2, refused.stderr + refused.stdout
    assert "uncommitted" in refused.stdout + refused.stderr
    assert worktree(repo, "one").is_dir()
    in_task(env, repo, "one", "git checkout -q -- README")
    # no terminal to ask: the branch stays
    kept = env.claudy("rm", "one", "--force")
    assert kept.returncode == 0, kept.stderr + kept.stdout
    assert "branch hal/one kept" in kept.stdout
    assert not worktree(repo, "one").exists()
    assert "task one" in git(repo, "log", "--oneline", "hal/one")
    # deleting a branch whose commit exists nowhere else needs its own flag
    refused = env.claudy("rm", "two", "--force", "--delete-branch")
    assert refused.returncode == 2 and "no other branch or tag" in refused.stdout + refused.stderr
    gone = env.claudy("rm", "two", "--force", "--delete-branch", "--discard")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert git(repo, "branch", "--list", "hal/two") == ""
    assert not worktree(repo, "two").exists()
    # a task of a kept branch goes on from its commit
    again = env.claudy("-d", str(repo), "--task", "one")
    assert again.returncode == 0, again.stderr + again.stdout
    assert (worktree(repo, "one") / "one.txt").read_text() == "one\n"


def test_bad_tasks_are_refused_with_the_reason(env: HostParent, repo: Path) -> None:
    plain = env.project("plain")
    res = env.claudy("-d", str(plain), "--task", "x")
    assert res.returncode == 2 and "not in a git repository" in res.stderr + res.stdout
    res = env.claudy("-d", str(repo), "--task", "Bad/Name")
    assert res.returncode == 2 and "bad task name" in res.stderr
