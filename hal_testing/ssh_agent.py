"""A real ssh-agent for tests, run as the worker user (OpenSSH's agent refuses a peer of
another uid), holding one fresh ed25519 key."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hal_testing.engine import GID, UID


def as_user(*argv: str, uid: int = UID, gid: int = GID) -> list[str]:
    """`argv` run as `uid`:`gid` (setpriv, util-linux)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]


@contextmanager
def running_agent(uid: int = UID, gid: int = GID) -> Iterator[tuple[Path, str]]:
    """(its socket, `ssh-add -l`'s line for its key). In a directory of its own under /tmp
    (pytest's is root's 0700, which the user cannot pass; and socket paths must be short)."""
    d = Path(tempfile.mkdtemp(prefix="hal-agent-"))
    os.chown(d, uid, gid)
    sock = d / "agent.sock"
    env = {"PATH": os.environ["PATH"], "SSH_AUTH_SOCK": str(sock)}
    proc = subprocess.Popen(as_user("ssh-agent", "-D", "-a", str(sock), uid=uid, gid=gid), env=env)
    try:
        subprocess.run(["sh", "-c", f"until [ -S {sock} ]; do sleep 0.05; done"], timeout=10)
        key = str(d / "id")
        keygen = ("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hal-test", "-f", key)
        subprocess.run(keygen, check=True, env=env)  # (the uid may have no passwd entry)
        os.chown(key, uid, gid)
        subprocess.run(as_user("ssh-add", "-q", key, uid=uid, gid=gid), check=True, env=env)
        listed = subprocess.run(
            as_user("ssh-add", "-l", uid=uid, gid=gid),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        yield sock, listed
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
