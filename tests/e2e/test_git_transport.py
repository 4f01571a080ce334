"""End to end: projects that travel by git (issue 16, part 2), against a real parent through
claudy on the local test engine with `[parent] projects = "git"`: the repository goes to the
parent as a bundle, the worker runs on a worktree of the parent's copy and commits there with
git; `claudy pull` brings the commit into the local repository's `hal/NAME`; a local commit
and `claudy push` reach the parent's copy, a rewritten history is refused; a folder that is
no repository is refused with what to do; and with `auto` a local engine keeps the mount."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hal_common import gitsync, labels
from hal_common.naming import container_name, session_name
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.host import HostParent
from host_shim.adapters.engine import HostEngine
from host_shim.adapters.parent_client import ParentClient

pytestmark = pytest.mark.e2e

ID = ["-c", "user.email=agent@example.com", "-c", "user.name=Agent"]


def git(repo: Path | str, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", *ID, "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    worker = 'image = "hal9000/worker:standard"\nmemory = "1g"\n'
    p = host_parents("gitsync", worker=worker, extra=NO_BUILTIN_SERVICES)
    p.set_projects("git")
    return p


@pytest.fixture(scope="module")
def repo(env: HostParent) -> Path:
    """The user's repository: theirs (claudy runs as its owner), one commit on main."""
    r = env.root / "app"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "README").write_text("hello\n")
    git(r, "add", "README")
    git(r, "commit", "-qm", "first")
    return r


def parent_copy(repo: Path) -> str:
    return f"/data/repos/{gitsync.repo_key(str(repo))}"


def in_parent_git(env: HostParent, repo: Path, *args: str) -> str:
    return env.sh(" ".join(["git", "-c", "safe.directory=*", "-C", parent_copy(repo), *args]))


def test_the_repository_travels_and_the_agents_commit_comes_back(
    env: HostParent, repo: Path
) -> None:
    res = env.claudy("-d", str(repo), "--task", "t")
    assert res.returncode == 0, res.stderr + res.stdout
    early = env.claudy("pull", "t", str(repo))  # no commit of the agent's yet
    assert early.returncode == 0 and "no commit of the agent's yet" in early.stdout, early
    assert git(repo, "rev-parse", "hal/t") == git(repo, "rev-parse", "main")
    worktree = f"{parent_copy(repo)}/.hal9000/tasks/t"
    assert res.stdout.strip().splitlines()[-1] == session_name(worktree)
    # the worker runs on a worktree of the parent's copy, not on the host's path
    (w,) = [w for w in env.inner_workers() if w["Config"]["Labels"].get(labels.TASK) == "t"]
    assert w["Config"]["WorkingDir"] == worktree
    assert w["State"]["Status"] == "running"
    assert not (repo / ".hal9000").exists()  # nothing was made in the user's folder
    container = container_name(session_name(worktree))
    # the agent's git works fully: it commits on its branch
    out = env.inner(
        "exec", "-w", worktree, container, "sh", "-c",
        f"cat README && echo fixed > fix.txt && git add fix.txt && "
        f"git {' '.join(ID)} commit -qm 'agent work' && git rev-parse --abbrev-ref HEAD",
    )  # fmt: skip
    assert "hello" in out and out.strip().endswith("hal/t"), out
    # hooks and config stay read-only in the worker
    denied = env.inner(
        "exec", container, "sh", "-c",
        f"touch {parent_copy(repo)}/.git/hooks/pre-commit 2>&1; echo rc=$?",
    )  # fmt: skip
    assert "rc=0" not in denied, denied
    main_before = git(repo, "rev-parse", "main")
    pulled = env.claudy("pull", "t", str(repo))
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    assert "1 commit(s) ahead of main" in pulled.stdout, pulled.stdout
    assert "agent work" in git(repo, "log", "--oneline", "hal/t")
    assert git(repo, "rev-parse", "main") == main_before  # the user's branch untouched
    assert git(repo, "status", "--porcelain") == ""  # and their files
    assert not (repo / "fix.txt").exists()
    again = env.claudy("pull", "t", str(repo))
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout + again.stderr


def test_push_sends_new_local_commits_and_refuses_a_rewrite(env: HostParent, repo: Path) -> None:
    (repo / "local.txt").write_text("mine\n")
    git(repo, "add", "local.txt")
    git(repo, "commit", "-qm", "local work")
    mine = git(repo, "rev-parse", "main")
    res = env.claudy("push", "t", str(repo))
    assert res.returncode == 0, res.stderr + res.stdout
    assert in_parent_git(env, repo, "rev-parse", "main") == mine
    # a rewritten main is not a fast-forward: refused, the parent's copy unchanged
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    (repo / "other.txt").write_text("other\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-qm", "rewritten")
    refused = env.claudy("push", "t", str(repo))
    assert refused.returncode == 2, refused.stderr + refused.stdout
    assert "not a fast-forward" in refused.stderr, refused.stderr
    assert in_parent_git(env, repo, "rev-parse", "main") == mine
    unknown = env.claudy("push", "nosuchtask", str(repo))
    assert unknown.returncode == 2 and "no task nosuchtask" in unknown.stderr, unknown.stderr


def test_a_folder_that_is_no_repository_is_refused_with_what_to_do(env: HostParent) -> None:
    plain = env.root / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("x\n")
    res = env.claudy("-d", str(plain))
    assert res.returncode == 2, res.stderr + res.stdout
    said = " ".join(res.stderr.split())
    assert "is not a git repository" in said and "cannot see this folder" in said, said
    assert "git init" in said and "local engine" in said, said


def test_auto_keeps_the_mount_on_a_local_engine(env: HostParent) -> None:
    env.set_projects("auto")
    try:
        local = env.root / "local"
        local.mkdir()
        git(local, "init", "-q", "-b", "main")
        res = env.claudy("-d", str(local))
        assert res.returncode == 0, res.stderr + res.stdout
        assert res.stdout.strip().splitlines()[-1] == session_name(str(local))
        assert not list((local / ".git").glob(f"{gitsync.PROBE_PREFIX}*"))  # probe removed
        # what the detection asks: the parent reads the probe at the same path, or not
        parent = HostEngine(env.dclient).container(env.name)
        assert parent is not None
        agent = ParentClient(parent)
        probe = local / ".git" / "probe-by-test"
        probe.write_text("token-1\n")
        assert agent.sees(str(probe), "token-1")
        assert not agent.sees(str(probe), "token-2")
        elsewhere = env.base / "not-a-root" / "probe"  # on this host, not under a root
        elsewhere.parent.mkdir()
        elsewhere.write_text("token-1\n")
        assert not agent.sees(str(elsewhere), "token-1")
    finally:
        env.set_projects("git")


def test_without_a_task_the_current_branch_names_it_and_a_rerun_goes_on(
    env: HostParent, repo: Path
) -> None:
    # after the push test the local main was rewritten: the parent keeps its own, and says so
    res = env.claudy("-d", str(repo))
    assert res.returncode == 0, res.stderr + res.stdout
    assert res.stdout.strip().splitlines()[-1] == session_name(
        f"{parent_copy(repo)}/.hal9000/tasks/main"
    )
    assert "the parent keeps its own" in " ".join(res.stderr.split()), res.stderr
    again = env.claudy("-d", str(repo), "--task", "t")  # an existing task: no --from noise
    assert again.returncode == 0, again.stderr + again.stdout
    assert "ignored" not in again.stderr + again.stdout
