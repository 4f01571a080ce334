"""End to end, issue 16 part 1: a parent on another Docker engine, over ssh.

The "remote host" is the tests' own (hal_testing/remote_host.py): a container of the test
engine running sshd and its own dockerd, nothing of this machine mounted, reached at its
address on a network the test made, with a key pair and known_hosts the test made.

`claudy --engine ssh://root@ADDR -d DIR` builds the images there (the build context over the
connection), makes the parent there, loads the worker image, Claude Code, the credential and
`~/.claude` into it over exec stdin, and starts a worker running the real Claude Code in the
remote parent's tmux; the shared MCP servers register there. At the same time a second parent
(the same config) runs on the local test engine, and `claudy status --all` shows both.

The first tests copy their project (and the config directory the parent mounts) to the same
path on the remote host (`RemoteHost.mirror`), as a shared file system would hold them; the
last one's repository is on this machine only and travels by git (issue 16 part 2).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common import gitsync
from hal_common.naming import container_name, session_name
from hal_testing import canary
from hal_testing.engine import GID, UID
from hal_testing.host import IMAGE, HostParent
from hal_testing.remote_host import RemoteHost
from hal_testing.schemas import validate
from tests.e2e.test_quick_attach import attach
from tests.e2e.test_shared_services import CANARY, host_claude

pytestmark = pytest.mark.e2e

BUILTIN_MCP = {
    "chroma-mcp": "http://10.213.213.1:8811/mcp",
    "memory-bank": "http://10.213.213.1:8812/mcp",
}
SLOW = 2400  # seconds: the first run builds every image on the remote engine


@pytest.fixture(scope="module")
def remote(
    remote_host: RemoteHost,
    tmp_path_factory: pytest.TempPathFactory,
    docker_host: str,
    built_images: dict[str, str],
) -> Iterator[HostParent]:
    """A user whose claudy runs with DOCKER_HOST on the local test engine; the same config
    and home drive a parent there and (with --engine) one on the remote host."""
    base = tmp_path_factory.mktemp("hal-rm")
    name = f"hal9000-rm-{uuid.uuid4().hex[:6]}"
    client = remote_host.engine()
    rp = HostParent.create(
        client,
        docker_host,  # DOCKER_HOST: the local engine; --engine picks the remote one
        base,
        name,
        home="home",
        env={"SUDO_UID": str(UID), "SUDO_GID": str(GID), "PATH": remote_host.env["PATH"]},
    )
    host_claude(rp.home)
    # these tests' projects are copies at the same path there, which claudy's probe would
    # not find (a copy, not a shared file system): the bind mount, said outright; the last
    # test turns detection back on
    rp.set_projects("mount")
    # the config directory the parent mounts, at its path on the remote host
    remote_host.mirror(base / "config")
    yield rp
    for where in (("--engine", remote_host.url), ()):
        rp.claudy(*where, "down", "--volumes", "--yes", timeout=300)
    client.close()


def remote_project(rp: HostParent, host: RemoteHost, name: str) -> Path:
    """A project here, and the same directory at the same path on the remote host."""
    proj = rp.project(name)
    (proj / "README.md").write_text("remote\n")
    host.mirror(rp.root, UID, GID)
    return proj


def test_claudy_on_an_ssh_engine_starts_claude_code_in_the_remote_parent(
    remote: HostParent, remote_host: RemoteHost
) -> None:
    proj = remote_project(remote, remote_host, "app")
    res = remote.claudy("--engine", remote_host.url, "-d", str(proj), timeout=SLOW)
    assert res.returncode == 0, res.stderr + res.stdout
    session = session_name(str(proj))
    assert res.stdout.strip() == session
    # the parent is on the remote engine, not on the local one
    assert remote.dclient.containers.get(remote.name).status == "running"
    local = remote.claudy("status", "--json")
    assert json.loads(local.stdout)["parent"]["state"] == "absent", local.stdout
    # its window in the remote parent's tmux runs the real Claude Code
    assert retry_until(lambda: session in remote.windows(), 60, raises=False), remote.logs()

    def screen() -> str:
        return remote.tmux("capture-pane", "-p", "-t", f"=hal:={session}")[1]

    assert retry_until(lambda: "Claude Code v" in screen(), 120, raises=False), screen()
    # the image came over the connection: the remote engine built and holds it
    images = {t for i in remote.dclient.images.list() for t in i.tags}
    assert {"hal9000/worker:minimal", "hal9000/parent:0.1.0"} <= images, images


def test_the_quick_entry_reattaches_over_ssh_and_falls_back_when_the_window_is_gone(
    remote: HostParent, remote_host: RemoteHost, server: libtmux.Server
) -> None:
    """`claudy --engine ssh://… DIR` on a terminal: once a full run in this environment has
    left its hint, the quick entry asks the remote engine with one `docker -H … inspect` and
    attaches with one `docker -H … exec -it` (no click, no docker-py: `-X importtime`). The
    window gone, the in-parent script says so and the full path makes it again."""
    proj = remote_project(remote, remote_host, "app")  # the first test's worker
    session = session_name(str(proj))
    engine = ("--engine", remote_host.url)
    assert retry_until(lambda: session in remote.windows(), 60, raises=False), remote.logs()
    # the terminal's claudy is not sudo's (the runs above were): its first run is full
    assert attach(remote, server, proj, *engine) == "full"
    assert retry_until(lambda: session in remote.windows(), 60, raises=False), remote.logs()
    assert attach(remote, server, proj, *engine) == "quick"
    assert retry_until(lambda: session in remote.windows(), 60, raises=False), remote.logs()
    remote.tmux("kill-window", "-t", f"=hal:={session}")
    assert attach(remote, server, proj, *engine) == "full"
    assert retry_until(lambda: session in remote.windows(), 60, raises=False), remote.logs()
    assert attach(remote, server, proj, f"--engine={remote_host.url}") == "quick"


def test_status_names_the_engine_and_the_worker(
    remote: HostParent, remote_host: RemoteHost
) -> None:
    res = remote.claudy("--engine", remote_host.url, "status", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    validate("claudy-status", doc)
    assert doc["engine"] == {"url": remote_host.url, "origin": "--engine"}
    assert doc["parent"]["state"] == "running"
    assert [w["project"] for w in doc["workers"]] == [str(remote.root / "app")]
    text = remote.claudy("--engine", remote_host.url, "status").stdout
    assert f"on {remote_host.url}: running" in text, text


def test_a_local_parent_runs_beside_it_and_status_all_lists_both(
    remote: HostParent, remote_host: RemoteHost, docker_host: str
) -> None:
    proj = remote.project("here")
    res = remote.claudy("-d", str(proj), timeout=SLOW)  # DOCKER_HOST: the local engine
    assert res.returncode == 0, res.stderr + res.stdout
    res = remote.claudy("--engine", remote_host.url, "status", "--all", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    validate("claudy-status-all", doc)
    rows = {r["engine"]: r for r in doc["engines"]}
    there, here = rows[remote_host.url], rows[docker_host]
    assert there["current"] and there["reachable"] and there["names"] == ["--engine"]
    assert there["parent"] == {"name": remote.name, "state": "running"}
    assert there["workers"] == 1
    assert not here["current"] and here["reachable"] and "DOCKER_HOST" in here["names"]
    assert here["parent"] == {"name": remote.name, "state": "running"}
    assert here["workers"] == 1
    text = remote.claudy("--engine", remote_host.url, "status", "--all").stdout
    assert f"* {remote_host.url} (--engine): parent {remote.name} running, 1 worker(s)" in text
    assert f"  {docker_host} (DOCKER_HOST" in text, text


def test_an_unknown_host_key_is_said_with_what_to_do(
    remote: HostParent, remote_host: RemoteHost
) -> None:
    (remote_host.ssh_dir / "known_hosts.bak").write_bytes(
        (remote_host.ssh_dir / "known_hosts").read_bytes()
    )
    (remote_host.ssh_dir / "known_hosts").write_text("")
    try:
        # another user: a connection of its own (the shared master is per user and host;
        # closing it would cut the background build's stream)
        url = f"ssh://hostkey@{remote_host.address}"
        res = remote.claudy("--engine", url, "status", timeout=120)
    finally:
        (remote_host.ssh_dir / "known_hosts").write_bytes(
            (remote_host.ssh_dir / "known_hosts.bak").read_bytes()
        )
    assert res.returncode != 0
    assert "ssh does not know the host's key" in res.stderr, res.stderr
    assert "known_hosts" in res.stderr


def test_the_shared_mcp_servers_register_in_the_remote_worker(
    remote: HostParent, remote_host: RemoteHost
) -> None:
    def ready() -> bool:
        found = remote.services()
        return found is not None and all(x["ok"] or x["state"] == "disabled" for x in found)

    # the services image is built on the remote engine in the background, then loaded
    assert retry_until(ready, SLOW, raises=False), remote.sh(
        "hal-agent services; tail -n 20 /data/logs/*.log"
    )
    out = remote.in_worker(remote.root / "app", "claude", "mcp", "list")
    for name, url in BUILTIN_MCP.items():
        line = next((ln for ln in out.splitlines() if ln.startswith(f"{name}:")), "")
        assert url in line and "Connected" in line, out


def test_the_canary_is_nowhere_on_the_remote_host_but_the_credentials_file(
    remote: HostParent, remote_host: RemoteHost
) -> None:
    """The marker sweep of test_shared_services, on the remote side: inside the remote
    parent (containers' inspect data and logs, images' histories, every process's env and
    argv, every file, the tmux screens), and on the remote host itself (its processes, which
    include the parent's and the workers', and its whole file system)."""
    hits = canary.sweep(remote, CANARY)  # the remote parent, and this machine's processes
    assert hits == [f"HIT file {IMAGE.claude_home}/.credentials.json"], "\n".join(hits)
    pattern = canary.pattern(CANARY)
    # the remote host: the parent's inspect data and log, its processes, its files (the
    # volumes among them: the Claude home's volume holds the one credentials file)
    outside = f"""
set -u
m='{pattern}'
docker inspect {remote.name} | grep -q "$m" && echo "HIT inspect"
docker logs {remote.name} 2>&1 | grep -q "$m" && echo "HIT logs"
for p in /proc/[0-9]*; do
  grep -qa "$m" $p/environ 2>/dev/null && echo "HIT env $p"
  grep -qa "$m" $p/cmdline 2>/dev/null && echo "HIT argv $p"
done
grep -rlsa --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$m" / | sed 's/^/HIT file /'
true
"""
    hits = [ln for ln in remote_host.sh(outside).splitlines() if ln.startswith("HIT")]
    claude_volume = f"/var/lib/docker/volumes/{remote.name}-claude/_data/.credentials.json"
    assert hits == [f"HIT file {claude_volume}"], "\n".join(hits)


def test_a_git_project_only_here_travels_to_the_remote_parent_and_its_commit_comes_back(
    remote: HostParent, remote_host: RemoteHost
) -> None:
    """Issue 16's remote flow with the git path: a repository on this machine only (never
    mirrored) goes to the remote parent as a bundle (`[parent] projects = "auto"` finds that
    the remote engine does not see it); the worker runs Claude Code there on a worktree of
    the parent's copy, with the shared MCP servers; the agent commits with git; `claudy pull`
    brings the commit into the local repository's `hal/t`, the user's branch untouched."""
    repo = remote.root / "only-here"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "safe.directory=*", "-c", "user.email=u@example.com",
             "-c", "user.name=U", "-C", str(repo), *args],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q", "-b", "main")
    (repo / "README").write_text("hello from here\n")
    git("add", "README")
    git("commit", "-qm", "first")
    subprocess.run(["chown", "-R", f"{UID}:{GID}", str(repo)], check=True)  # the user's
    assert remote_host.sh(f"test -e {repo} && echo there || echo absent").strip() == "absent"
    remote.set_projects("auto")  # the default: the probe finds the engine cannot see it
    engine = ("--engine", remote_host.url)
    res = remote.claudy(*engine, "-d", str(repo), "--task", "t", timeout=SLOW)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "goes by git" in res.stdout + res.stderr, res.stdout + res.stderr
    # the config changed here (projects = "auto"): the remote parent reads this one now
    assert "sent " in res.stdout + res.stderr, res.stdout + res.stderr
    assert remote.sh(f"cat {IMAGE.config_file}") == remote.config_file.read_text().strip()
    worktree = f"/data/repos/{gitsync.repo_key(str(repo))}/.hal9000/tasks/t"
    assert res.stdout.strip().splitlines()[-1] == session_name(worktree)
    assert retry_until(lambda: session_name(worktree) in remote.windows(), 60, raises=False)
    out = remote.inner(
        "exec", "-w", worktree, container_name(session_name(worktree)), "sh", "-c",
        "cat README && echo fixed > fix.txt && git add fix.txt && "
        "git -c user.email=a@example.com -c user.name=A commit -qm 'agent work' && "
        "git rev-parse --abbrev-ref HEAD",
    )  # fmt: skip
    assert "hello from here" in out and out.strip().endswith("hal/t"), out
    mcp = remote.in_worker(Path(worktree), "claude", "mcp", "list")
    for name, url in BUILTIN_MCP.items():
        line = next((ln for ln in mcp.splitlines() if ln.startswith(f"{name}:")), "")
        assert url in line and "Connected" in line, mcp
    main_before = git("rev-parse", "main")
    pulled = remote.claudy(*engine, "pull", "t", str(repo), timeout=300)
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    assert "1 commit(s) ahead of main" in pulled.stdout, pulled.stdout
    assert "agent work" in git("log", "--oneline", "hal/t")
    assert git("rev-parse", "main") == main_before and not (repo / "fix.txt").exists()
