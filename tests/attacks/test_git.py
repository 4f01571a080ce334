"""Attacks on the host's git from inside workers (issue 15): real parent through claudy, real
workers of the standard image (git in it).

A worker writes its project, and a task's worker its repository's `.git`; git on the host
later runs what `.git/config` and `.git/hooks` say. So, from inside a main checkout's worker
and a task's worker: writing the config (`core.fsmonitor`, `core.hooksPath`), planting a
hook, renaming `.git` or `hooks` away to put others in their place, pointing a task's `.git`
file or its `commondir` at a config of the worker's own. Each must fail, and the host's git
must run nothing afterwards. A task's worker must not reach another repository, nor the rest
of its own.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hal_common.naming import container_name, session_name
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.engine import GID, UID
from hal_testing.host import HostParent

pytestmark = pytest.mark.e2e

ID = ["-c", "user.email=t@example.com", "-c", "user.name=T"]


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", *ID, "-C", str(repo), *args],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def make_repo(env: HostParent, name: str) -> Path:
    r = env.project(name)
    for args in (("init", "-q", "-b", "main"), ("commit", "-q", "--allow-empty", "-m", "one")):
        assert git(r, *args).returncode == 0
    subprocess.run(["chown", "-R", f"{UID}:{GID}", str(r)], check=True)
    return r


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    worker = 'image = "hal9000/worker:standard"\nmemory = "1g"\n'
    return host_parents("git", worker=worker, extra=NO_BUILTIN_SERVICES)


@pytest.fixture(scope="module")
def repos(env: HostParent) -> tuple[Path, Path, Path]:
    """(the repository, its task `t`'s worktree, another repository), each with a worker."""
    repo, other = make_repo(env, "app"), make_repo(env, "other")
    (repo / "private.txt").write_text("the main checkout's own file\n")
    for args in (("-d", str(repo)), ("-d", str(repo), "--task", "t"), ("-d", str(other))):
        res = env.claudy(*args)
        assert res.returncode == 0, res.stderr + res.stdout
    return repo, repo / ".hal9000/tasks/t", other


def attempt(env: HostParent, project: Path, script: str) -> tuple[int, str]:
    """`sh -c SCRIPT` as the agent, in `project`'s worker: exit code and output."""
    container = container_name(session_name(str(project)))
    return env.run(["docker", "-H", "unix:///run/hal9000/docker.sock", "exec", "-w",
                    str(project), container, "sh", "-c", script])  # fmt: skip


ATTACKS = {
    "fsmonitor": "git config core.fsmonitor 'touch {proof}'",
    "hooksPath": "git config core.hooksPath /tmp",
    "append config": "echo '[core]\n\tfsmonitor = touch {proof}' >> {git}/config",
    "replace config": "cp {git}/config /tmp/c && mv /tmp/c {git}/config",
    "remove config": "rm -f {git}/config",
    "plant hook": "printf '#!/bin/sh\\ntouch {proof}\\n' > {git}/hooks/post-checkout",
    "chmod hooks": "chmod 777 {git}/hooks",
    "rename hooks": "mv {git}/hooks {git}/hooks.old",
    "rename .git": "mv {git} {git}.old",
    "rename config": "mv {git}/config {git}/config.old",
}


@pytest.mark.parametrize("who", ["main", "task"])
def test_config_and_hooks_cannot_be_written(
    env: HostParent, repos: tuple[Path, Path, Path], who: str
) -> None:
    repo, task, _ = repos
    project = repo if who == "main" else task
    proof = repo.parent / f"ran-{who}"
    done = []
    for what, script in ATTACKS.items():
        code, out = attempt(env, project, script.format(git=f"{repo}/.git", proof=proof))
        if code == 0:
            done.append(f"{what}: {out}")
    assert not done, done
    # git works for the agent all the same: it commits
    code, out = attempt(env, project, f"echo x > f-{who} && git add f-{who} && "
                        f"git {' '.join(ID)} commit -qm {who}")  # fmt: skip
    assert code == 0, out
    # and the host's git runs nothing the worker tried to plant
    assert git(project, "status").returncode == 0
    assert git(repo, "checkout", "-q", "-b", f"after-{who}").returncode == 0
    assert not proof.exists()


def test_a_task_cannot_point_the_hosts_git_elsewhere(
    env: HostParent, repos: tuple[Path, Path, Path]
) -> None:
    repo, task, _ = repos
    proof = repo.parent / "ran-pointer"
    config = f"[core]\\n\\tfsmonitor = touch {proof}\\n"
    evil = f"mkdir -p /tmp/evil && printf '{config}' > /tmp/evil/config"
    for script in (
        f"{evil}; echo 'gitdir: {task}/evil' > .git",
        f"{evil}; echo {task}/evil > {repo}/.git/worktrees/t/commondir",
        f"{evil}; echo {task} > {repo}/.git/worktrees/t/gitdir",
    ):
        code, out = attempt(env, task, script)
        assert code != 0, f"{script}: {out}"
    assert "gitdir: " in (task / ".git").read_text()
    assert git(task, "status").returncode == 0
    assert not proof.exists()


def test_a_task_reaches_no_other_repository(
    env: HostParent, repos: tuple[Path, Path, Path]
) -> None:
    repo, task, other = repos
    for script in (
        f"ls {other}",
        f"git -C {other} log",
        f"cat {repo}/private.txt",
        f"ls {repo} | grep -v -x -e .git -e .hal9000",  # the main checkout's files: none
    ):
        code, out = attempt(env, task, script)
        assert code != 0, f"{script}: {out}"
    # its own repository's history is all there (the common .git)
    code, out = attempt(env, task, "git log --oneline main")
    assert code == 0 and "one" in out, out
