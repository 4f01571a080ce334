"""Attacks on projects that travel by git (issue 16, part 2). What comes from the parent's
side (a worker wrote the repository there) is untrusted in claudy, and what sits in the
parent's copy is untrusted in the parent:

- a bundle that holds more refs than the one asked for (the user's `main`), or a ref name
  git would not make, is refused by claudy before anything is fetched;
- a bundle bigger than the bound is refused, nothing fetched;
- hooks (the user's own, and any planted in the parent's copy) never run when claudy or the
  parent fetches, bundles or makes a worktree.

The first two and the user's hooks run against a real git only; the parent's hooks and the
size bound against a real parent through claudy (`[parent] projects = "git"`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hal_common import gitsync
from hal_common.errors import HalError, UsageError
from hal_common.naming import container_name, session_name
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.host import HostParent
from host_shim.adapters import local_git

ID = ["-c", "user.email=t@example.com", "-c", "user.name=T"]


def git(repo: Path | str, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", *ID, "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "one")
    return path


def hook(repo: Path, name: str, marker: Path) -> None:
    h = repo / ".git" / "hooks" / name
    h.parent.mkdir(exist_ok=True)
    h.write_text(f"#!/bin/sh\necho ran >> {marker}\n")
    h.chmod(0o755)


@pytest.fixture
def agent_side(tmp_path: Path) -> Path:
    """What the parent's copy looks like: the user's history and an agent's branch."""
    r = make_repo(tmp_path / "agent")
    git(r, "switch", "-q", "-c", "hal/t")
    git(r, "commit", "-q", "--allow-empty", "-m", "agent")
    return r


def test_a_bundle_with_more_than_the_agents_branch_is_refused(
    tmp_path: Path, agent_side: Path
) -> None:
    user = tmp_path / "user"
    git(tmp_path, "clone", "-q", str(agent_side), str(user))
    git(user, "switch", "-q", "main")
    before = git(user, "rev-parse", "main")
    git(agent_side, "switch", "-q", "main")
    git(agent_side, "commit", "-q", "--allow-empty", "-m", "rewrite the user's main")
    bundle = tmp_path / "evil.bundle"
    git(agent_side, "bundle", "create", "-q", str(bundle), "refs/heads/hal/t", "refs/heads/main")
    with pytest.raises(HalError, match="exactly refs/heads/hal/t; it also holds refs/heads/main"):
        local_git.fetch_bundle(str(user), str(bundle), "refs/heads/hal/t")
    assert git(user, "rev-parse", "main") == before
    # only the user's main, named as the agent's branch would be: not what was asked for
    only_main = tmp_path / "main.bundle"
    git(agent_side, "bundle", "create", "-q", str(only_main), "refs/heads/main")
    with pytest.raises(HalError, match="exactly refs/heads/hal/t"):
        local_git.fetch_bundle(str(user), str(only_main), "refs/heads/hal/t")


@pytest.mark.parametrize(
    "name",
    ["refs/heads/hal/t x", "refs/heads/hal/t\x1b]0;pwned\x07", "--upload-pack=touch /tmp/x"],
)
def test_a_hostile_ref_name_in_a_bundle_is_refused(
    tmp_path: Path, agent_side: Path, name: str
) -> None:
    user = make_repo(tmp_path / "user")
    real = tmp_path / "real.bundle"
    git(agent_side, "bundle", "create", "-q", str(real), "refs/heads/hal/t")
    data = real.read_bytes()
    head, _, pack = data.partition(b"\n\n")
    sha = head.splitlines()[1].split(b" ")[0]
    forged = tmp_path / "forged.bundle"
    forged.write_bytes(b"# v2 git bundle\n" + sha + b" " + name.encode() + b"\n\n" + pack)
    with pytest.raises(HalError):
        local_git.fetch_bundle(str(user), str(forged), "refs/heads/hal/t")
    assert not git(user, "for-each-ref", "refs/heads/hal/")
    with pytest.raises(HalError):
        gitsync.parse_heads(f"{sha.decode()} {name}\n")


def test_claudy_runs_none_of_the_repositorys_hooks_when_it_fetches(
    tmp_path: Path, agent_side: Path
) -> None:
    user = make_repo(tmp_path / "user")
    marker = tmp_path / "ran"
    for name in ("reference-transaction", "post-checkout", "post-merge", "pre-auto-gc"):
        hook(user, name, marker)
    git(user, "commit", "-q", "--allow-empty", "-m", "hooks work here")
    assert marker.exists()  # the hooks are live: git itself runs them
    marker.unlink()
    bundle = tmp_path / "b.bundle"
    git(agent_side, "bundle", "create", "-q", str(bundle), "refs/heads/hal/t")
    got = local_git.fetch_bundle(str(user), str(bundle), "refs/heads/hal/t")
    assert got.new == git(agent_side, "rev-parse", "hal/t")
    assert not marker.exists()


def test_a_checked_out_branch_is_never_updated(tmp_path: Path, agent_side: Path) -> None:
    user = make_repo(tmp_path / "user")
    git(user, "switch", "-q", "-c", "hal/t")
    bundle = tmp_path / "b.bundle"
    git(agent_side, "bundle", "create", "-q", str(bundle), "refs/heads/hal/t")
    with pytest.raises(UsageError):
        local_git.fetch_bundle(str(user), str(bundle), "refs/heads/hal/t")
    assert git(user, "log", "--format=%s", "-1") == "one"


# --- against a real parent ------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    worker = 'image = "hal9000/worker:standard"\nmemory = "1g"\n'
    p = host_parents("gitatk", worker=worker, extra=NO_BUILTIN_SERVICES)
    text = p.config_file.read_text().replace("[parent]\n", '[parent]\nprojects = "git"\n', 1)
    p.config_file.write_text(text)
    return p


@pytest.mark.e2e
def test_hooks_in_the_parents_copy_never_run_and_a_big_bundle_is_refused(
    env: HostParent,
) -> None:
    repo = make_repo(env.root / "app")
    res = env.claudy("-d", str(repo), "--task", "t")
    assert res.returncode == 0, res.stderr + res.stdout
    copy = f"/data/repos/{gitsync.repo_key(str(repo))}"
    # hooks as if a worker had planted them (its own mount of hooks/ is read-only: the
    # parent's git must not run them whoever put them there)
    names = ("reference-transaction", "post-checkout", "pre-auto-gc", "post-rewrite")
    env.sh(
        " && ".join(
            f"printf '#!/bin/sh\\ntouch /tmp/hook-ran-{n}\\n' > {copy}/.git/hooks/{n} && "
            f"chmod 755 {copy}/.git/hooks/{n}"
            for n in names
        )
    )
    worktree = f"{copy}/.hal9000/tasks/t"
    container = container_name(session_name(worktree))
    # the worker commits a big file: the bundle back weighs more than 1 MiB
    env.inner(
        "exec", "-w", worktree, container, "sh", "-c",
        f"head -c 3000000 /dev/urandom > big.bin && git add big.bin && "
        f"git {' '.join(ID)} commit -qm big",
    )  # fmt: skip
    big = env.claudy("pull", "t", str(repo), "--max-mb", "1")
    assert big.returncode != 0, big.stdout
    assert "bigger than 1 MiB" in big.stderr, big.stderr
    assert not git(repo, "for-each-ref", "refs/heads/hal/")  # nothing fetched
    # every path that runs git in the parent: receive (push), worktree add (a new task),
    # bundle (pull)
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    assert env.claudy("push", "t", str(repo)).returncode == 0
    second = env.claudy("-d", str(repo), "--task", "u")
    assert second.returncode == 0, second.stderr + second.stdout
    pulled = env.claudy("pull", "t", str(repo))
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    ran = env.sh("ls /tmp | grep -c '^hook-ran-' || true")
    assert ran == "0", env.sh("ls /tmp")
