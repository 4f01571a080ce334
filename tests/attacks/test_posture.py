"""Attacks on a worker's posture (issue 11, point 4): from inside real workers running the real
Claude Code image, in a real parent (its inner dockerd runs with seccomp unconfined), with
claudy run as root as CI runs it.

Three projects: one owned by a user (the worker runs as that user), and two owned by root,
opened by root (the worker runs as the dedicated uid): one whose group may write it, one
only root may write. Every way to become root or gain a capability that we could think of
is tried, from a `docker exec` shell (as the parent's shell key opens one) and by reading
the agent's own process; each must fail.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common import __version__, labels
from hal_common.naming import container_name, session_name
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.engine import GID, UID, chown_project
from hal_testing.host import INNER, HostParent
from parent_agent.core.posture import posture, proc_status
from parent_agent.core.spec import DEDICATED_GID, DEDICATED_UID

pytestmark = pytest.mark.e2e

CLAUDE_SCREEN = ("Claude Code", "Welcome to Claude", "Choose the text style", "Let's get started")
# the character devices a container gets from the engine, and the ptys of its tmux
DEFAULT_DEVICES = {"console", "full", "null", "ptmx", "random", "tty", "urandom", "zero"}


@dataclass(frozen=True)
class Case:
    """One worker under attack: its project, and the uid/gid it must run as."""

    name: str
    project: Path
    uid: int
    gid: int

    @property
    def container(self) -> str:
        return container_name(session_name(str(self.project)))


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    """A parent whose workers run the standard image (git, curl, python3, ssh, jq)."""
    worker = 'image = "hal9000/worker:standard"\nmemory = "1g"\n'
    return host_parents("posture", worker=worker, extra=NO_BUILTIN_SERVICES)


@pytest.fixture(scope="module")
def cases(env: HostParent) -> dict[str, Case]:
    owned = env.project("owned")  # the test user's (UID:GID)
    rootgrp = chown_project(env.root / "rootgrp", 0, GID)  # root's, its group may write
    rootgrp.chmod(0o2775)
    rootonly = chown_project(env.root / "rootonly", 0, 0)  # root's alone
    rootonly.chmod(0o755)
    found = {
        "owned": Case("owned", owned, UID, GID),
        "rootgrp": Case("rootgrp", rootgrp, DEDICATED_UID, GID),
        "rootonly": Case("rootonly", rootonly, DEDICATED_UID, DEDICATED_GID),
    }
    for c in found.values():
        res = env.claudy("-d", str(c.project))
        assert res.returncode == 0, res.stderr + res.stdout
        told = f"{c.project} belongs to root" in res.stderr
        assert told == (c.uid == DEDICATED_UID), res.stderr  # the user is told, at once
        if c.name == "rootonly":
            assert "cannot write it" in res.stderr and f"chgrp -R {DEDICATED_GID}" in res.stderr
    return found


WORKERS = ["owned", "rootgrp"]


@pytest.fixture(params=WORKERS)
def case(request: pytest.FixtureRequest, cases: dict[str, Case]) -> Case:
    return cases[request.param]


def sh(env: HostParent, c: Case, script: str) -> tuple[int, str]:
    """`script` in a `docker exec` shell of the worker (as the parent's shell key opens)."""
    return env.run([*INNER, "exec", c.container, "sh", "-c", script])


def ok(env: HostParent, c: Case, script: str) -> str:
    code, out = sh(env, c, script)
    assert code == 0, f"{c.name}: {script!r} exited {code}:\n{out}"
    return out


def refused(env: HostParent, c: Case, script: str) -> str:
    """Run an attack; it must fail (non-zero exit), and nothing of it may run as root."""
    _, out = sh(env, c, f"{script}; echo rc=$?")
    rc = int(re.findall(r"rc=(\d+)", out)[-1])
    assert rc != 0, f"{c.name}: the attack {script!r} succeeded:\n{out}"
    assert "uid=0(" not in out and not re.search(r"^0$", out, re.M), out
    return out


def py(env: HostParent, c: Case, code: str) -> dict[str, str]:
    """A python3 snippet that prints a JSON object of outcomes."""
    out = ok(env, c, f"python3 - <<'EOF'\n{code}\nEOF")
    found: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return found


def assert_unprivileged(status_text: str, c: Case, where: str) -> None:
    st = proc_status(status_text)
    assert st["Uid"].split() == [str(c.uid)] * 4, (where, st["Uid"])
    assert st["Gid"].split() == [str(c.gid)] * 4, (where, st["Gid"])
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[key], 16) == 0, (where, key, st[key])
    assert st["NoNewPrivs"] == "1", (where, st["NoNewPrivs"])
    assert st["Seccomp"] == "2", (where, st["Seccomp"])  # the engine's default profile applied
    assert "0" not in st.get("Groups", "").split(), (where, st.get("Groups"))


# -- what the worker runs with ---------------------------------------------------------------


def test_the_agent_and_a_shell_run_unprivileged(env: HostParent, case: Case) -> None:
    pid = ok(env, case, "hal-worker pid").strip()
    assert pid.isdigit()
    assert_unprivileged(ok(env, case, f"cat /proc/{pid}/status"), case, "the agent (claude)")
    assert_unprivileged(ok(env, case, "cat /proc/self/status"), case, "a docker exec shell")
    assert_unprivileged(ok(env, case, "cat /proc/1/status"), case, "the worker's init")
    # every process in the worker: none runs as root, none holds a capability
    for text in ok(env, case, "cat /proc/[0-9]*/status 2>/dev/null").split("Name:")[1:]:
        st = proc_status("Name:" + text)
        assert "0" not in st["Uid"].split() and int(st["CapEff"], 16) == 0, st
    (attrs,) = json.loads(env.inner("inspect", case.container))
    status = ok(env, case, "cat /proc/1/status")
    assert posture(attrs, status).ok, posture(attrs, status).problems
    assert attrs["Config"]["User"] == f"{case.uid}:{case.gid}"
    assert ok(env, case, "id -un").strip() == "hal"  # the parent's passwd names the uid


def test_no_setuid_or_setgid_program_and_no_file_capability(env: HostParent, case: Case) -> None:
    assert ok(env, case, "find / -xdev -type f -perm /6000 2>/dev/null; true").strip() == ""
    found = py(
        env,
        case,
        """
import json, os, shutil, struct
# a file capability granting CAP_SETUID|CAP_SETGID (VFS_CAP_REVISION_2, effective)
cap = struct.pack("<IIIII", 0x02000001, (1 << 6) | (1 << 7), 0, 0, 0)
out = {}
for d in ("/tmp", os.getcwd(), os.environ["HOME"]):
    p = os.path.join(d, "capbin")
    shutil.copy("/usr/bin/id", p)
    try:
        os.setxattr(p, "security.capability", cap)
        out[d] = "set"
    except OSError as e:
        out[d] = e.strerror
    os.unlink(p)
print(json.dumps(out))
""",
    )
    assert set(found.values()) == {"Operation not permitted"}, found


def test_becoming_root_fails_every_way(env: HostParent, case: Case) -> None:
    attempts = [
        "su root -c id </dev/null",
        "su - -c id </dev/null",
        "setpriv --reuid=0 --regid=0 --clear-groups id",
        "unshare -U -r id",  # a user namespace with uid 0 in it
        "unshare -U id",
        "unshare -m id",
        "unshare -n id",
        "unshare -p -f id",
        "unshare -i -u id",
        "mount -t tmpfs none /mnt",
        "mount --bind /tmp /mnt",
        "mount -o remount,rw /",
        "mount -o remount,rw /etc/passwd",
        "chroot / id",
        "mknod /tmp/sda b 8 0",
        "echo 'x::0:0::/:/bin/sh' >> /etc/passwd",
        "echo 'x:x:0:hal' >> /etc/group",
        "cp /etc/passwd /tmp/p && echo 'x::0:0::/:/bin/sh' >> /tmp/p && mv /tmp/p /etc/passwd",
        "sed -i 's/^hal:x:[0-9]*:/hal:x:0:/' /etc/passwd",
        "command -v sudo",  # there is none
        "nsenter -t 1 -m -u -i -n -p id",
    ]
    for attack in attempts:
        refused(env, case, attack)
    found = py(
        env,
        case,
        """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def errno_of(f):
    try:
        r = f()
        return "ok" if r in (None, 0) else os.strerror(ctypes.get_errno())
    except OSError as e:
        return e.strerror
out["setuid0"] = errno_of(lambda: os.setuid(0))
out["setgid0"] = errno_of(lambda: os.setgid(0))
out["setgroups0"] = errno_of(lambda: os.setgroups([0]))
out["chroot"] = errno_of(lambda: os.chroot("/"))
out["unshare_user"] = errno_of(lambda: libc.unshare(0x10000000))
out["unshare_mount"] = errno_of(lambda: libc.unshare(0x00020000))
out["mount"] = errno_of(lambda: libc.mount(b"none", b"/mnt", b"tmpfs", 0, None))
# ptrace: every other process in the worker is ours and unprivileged (asserted elsewhere);
# attaching to the init gives nothing; the kernel's own threads are not visible at all
out["ptrace_init"] = errno_of(lambda: libc.ptrace(16, 1, 0, 0))
out["uid_after"] = str(os.getuid())
print(json.dumps(out))
""",
    )
    denied = {"Operation not permitted", "Permission denied"}
    for attack in ("setuid0", "setgid0", "setgroups0", "chroot", "unshare_user", "mount"):
        assert found[attack] in denied, (attack, found)
    assert found["unshare_mount"] in denied, found
    assert found["uid_after"] == str(case.uid), found


def test_the_root_file_system_is_read_only_and_tmp_home_project_are_not(
    env: HostParent, case: Case
) -> None:
    assert re.search(r" on / type \S+ \(ro[,)]", ok(env, case, "mount")), "/ is not read-only"
    for path in ("/x", "/usr/local/bin/x", "/etc/x", "/usr/bin/claude", "/var/lib/x", "/root/x"):
        out = refused(env, case, f"touch {path}")
        assert "Read-only file system" in out or "Permission denied" in out, out
    ok(env, case, f"touch /tmp/w /var/tmp/w $HOME/w {case.project}/w-{case.name}")
    assert ok(env, case, "stat -c %a:%u $HOME").strip() == f"700:{case.uid}"
    mounts = ok(env, case, "cat /proc/self/mountinfo")
    # the private Claude state sits on HOME's tmpfs (the engine mounts by depth)
    order = [m.split()[4] for m in mounts.splitlines()]
    assert order.index("/home/hal") < order.index("/home/hal/.claude"), order
    for line in mounts.splitlines():
        parts = line.split()
        if parts[4] in ("/etc/passwd", "/etc/group"):
            assert parts[5].startswith("ro"), line


def test_no_devices_beyond_the_defaults(env: HostParent, case: Case) -> None:
    assert ok(env, case, "find /dev -type b").strip() == ""
    chars = ok(env, case, "find /dev -type c").split()
    extra = [d for d in chars if not d.startswith("/dev/pts/") and d[5:] not in DEFAULT_DEVICES]
    assert extra == [], extra
    for dev in ("/dev/mem", "/dev/kmsg", "/dev/fuse", "/dev/net/tun", "/dev/sda", "/dev/vda"):
        refused(env, case, f"test -e {dev}")


def test_no_engine_socket_anywhere(env: HostParent, case: Case) -> None:
    sockets = ok(
        env,
        case,
        r"find / \( -path /proc -o -path /sys \) -prune -o -type s -print 2>/dev/null; true",
    ).split()
    assert not [s for s in sockets if "docker" in s or "containerd" in s], sockets
    assert "/tmp/hal-worker.tmux" in sockets  # the worker's own tmux, on its tmpfs
    assert all(s.startswith(("/tmp/", "/var/tmp/", "/home/hal/")) for s in sockets), sockets
    found = py(
        env,
        case,
        """
import json, socket
out = {}
for p in ("/run/hal9000/docker.sock", "/var/run/docker.sock", "/run/docker.sock",
          "/run/containerd/containerd.sock"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p)
        out[p] = "connected"
    except OSError as e:
        out[p] = e.strerror
print(json.dumps(out))
""",
    )
    assert "connected" not in found.values(), found
    # nor an abstract one of the engine's (CVE-2020-15257's kind): its sockets are files
    abstract = [x for x in ok(env, case, "cat /proc/net/unix").split() if x.startswith("@")]
    assert not [a for a in abstract if "docker" in a or "containerd" in a], abstract
    refused(env, case, "command -v docker || test -e /usr/bin/dockerd")


# -- what still works ------------------------------------------------------------------------


def test_git_curl_python_ssh_jq_work_in_the_project_and_tmp(env: HostParent, case: Case) -> None:
    for where in (f"{case.project}/repo-{case.name}", "/tmp/repo"):
        out = ok(
            env,
            case,
            f"set -e; mkdir -p {where} && cd {where} && git init -q . && echo hi > f && "
            "git add f && git -c user.email=a@b.c -c user.name=a commit -qm one && "
            "git log --format=%s && python3 -c 'print(open(\"f\").read())' "
            "&& curl -sS file://$PWD/f && echo '{\"a\": 41}' | jq '.a + 1'",
        )
        assert out.split() == ["one", "hi", "hi", "42"], out
    ok(env, case, "mkdir -p $HOME/.ssh && ssh-keygen -q -t ed25519 -N '' -f $HOME/.ssh/id")
    assert "OpenSSH" in ok(env, case, "ssh -V 2>&1")
    if case.name == "owned":
        st = (case.project / f"repo-{case.name}" / "f").stat()
        assert (st.st_uid, st.st_gid) == (UID, GID)


def test_claude_code_still_starts(env: HostParent, case: Case, server: libtmux.Server) -> None:
    session = server.new_session(
        f"u-{case.name}", x=120, y=40, window_command=env.claudy_argv(str(case.project))
    )
    pane = session.windows[0].panes[0]

    def screen() -> str:
        return "\n".join(pane.capture_pane())

    assert retry_until(lambda: any(m in screen() for m in CLAUDE_SCREEN), 60, raises=False), (
        screen()
    )


# -- what the user is told -------------------------------------------------------------------


def test_doctor_shows_each_workers_posture_and_flags_an_outdated_one(
    env: HostParent, cases: dict[str, Case]
) -> None:
    code, out = env.run(["hal-agent", "doctor"])
    assert "✓ worker confinement: the inner engine applies its default seccomp profile" in out
    for c in cases.values():
        line = next(x for x in out.splitlines() if f"worker {session_name(str(c.project))}:" in x)
        assert line.startswith("✓"), line
        assert f"uid {c.uid}, CapEff 0, NoNewPrivs 1, Seccomp 2" in line, line
        assert "read-only root" in line and "mem 1g, cpus 2, pids 1024" in line, line
    # root's own project: the user is told the agent cannot write it, and how to let it
    assert f"{cases['rootonly'].project} belongs to root" in out, out
    assert f"chgrp -R {DEDICATED_GID} {cases['rootonly'].project}" in out, out
    # a worker made the old way (root, default capabilities, writable root) is flagged
    session = "old-worker"
    lab = labels.worker_labels(session, "/nowhere", "hal9000/worker:standard", __version__)
    args = [a for k, v in lab.items() for a in ("--label", f"{k}={v}")]
    env.inner("run", "-d", "--name", container_name(session), *args, "--entrypoint", "sleep",
              "hal9000/worker:standard", "infinity")  # fmt: skip
    try:
        code, out = env.run(["hal-agent", "doctor"])
        line = next(x for x in out.splitlines() if f"worker {session}:" in x)
        assert code == 1 and line.startswith("✗ worker old-worker: NOT HARDENED"), out
        needles = ["runs as root", "capabilities not dropped", "no-new-privileges not set"]
        needles += ["writable root file system", "a process runs with uid 0", "CapEff"]
        for needle in needles:
            assert needle in line, (needle, line)
    finally:
        env.inner("rm", "-f", container_name(session))


def test_a_project_only_root_may_write_stays_unwritten(
    env: HostParent, cases: dict[str, Case]
) -> None:
    c = cases["rootonly"]
    assert_unprivileged(ok(env, c, "cat /proc/self/status"), c, "a shell")
    out = refused(env, c, f"touch {c.project}/x")
    assert "Permission denied" in out
    assert not (c.project / "x").exists()
    assert os.stat(c.project).st_uid == 0  # nothing was changed behind the user's back


def test_a_host_user_behind_sudo_runs_the_worker_even_on_roots_project(
    host_parents: Callable[..., HostParent],
) -> None:
    """claudy by `sudo` (SUDO_UID set): the worker is that user's, whoever owns the project."""
    env = host_parents(
        "posture-sudo",
        extra=NO_BUILTIN_SERVICES,
        env={"SUDO_UID": str(UID), "SUDO_GID": str(GID)},
    )
    proj = chown_project(env.root / "theirs", 0, 0)
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    assert "belongs to root" not in res.stderr  # the worker is the user's: nothing to tell
    c = Case("sudo", proj, UID, GID)
    assert_unprivileged(ok(env, c, "cat /proc/$(hal-worker pid)/status"), c, "the agent")
    assert_unprivileged(ok(env, c, "cat /proc/self/status"), c, "a docker exec shell")
    refused(env, c, "unshare -U -r id")
    refused(env, c, "touch /etc/x")
