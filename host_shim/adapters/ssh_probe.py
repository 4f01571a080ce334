"""Why an ssh:// engine does not answer: one `ssh` run, its words sorted into what to fix.

docker-py reaches an ssh:// engine through the ssh binary (`docker system dial-stdio` on the
far side); when that fails, all it says is a broken pipe. This runs the same ssh, without
prompts (BatchMode), with a command that tells the cases apart, and maps ssh's and the
shell's words to (what is wrong, what to do). Only when a connection has already failed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from urllib.parse import urlsplit

PROBE = "docker version --format '{{.Server.Version}}'"
TIMEOUT = 20.0

# (words in ssh's or the remote shell's output, what is wrong, what to do); first match wins
_CASES = (
    ("host key verification failed", "ssh does not know the host's key",
     "connect once by hand (ssh {target}) and check the fingerprint, or add the host's key "
     "to ~/.ssh/known_hosts"),
    ("remote host identification has changed", "the host's key changed since it was known",
     "check why, then remove the old key (ssh-keygen -R {host}) and connect again"),
    ("permission denied", "ssh could not log in",
     "load your key (ssh-add) or name it in ~/.ssh/config (IdentityFile) for {host}, and "
     "check that {target} accepts it"),
    ("connection refused", "nothing answers ssh there", "check that sshd runs on {host}"),
    ("could not resolve hostname", "the host's name does not resolve", "check the URL"),
    ("no route to host", "the host cannot be reached", "check the address and the network"),
    ("connection timed out", "the host does not answer", "check the address and the network"),
    ("docker: not found", "there is no docker command on the host",
     "install Docker there (Debian/Ubuntu: apt-get install docker.io)"),
    ("docker: command not found", "there is no docker command on the host",
     "install Docker there (Debian/Ubuntu: apt-get install docker.io)"),
    ("cannot connect to the docker daemon", "docker runs there, but its engine does not answer",
     "start it there (systemctl start docker)"),
    ("permission denied while trying to connect", "the remote user may not use docker",
     "add the user to the docker group there (usermod -aG docker USER)"),
)  # fmt: skip


def ssh_argv(url: str, command: str) -> list[str]:
    """`ssh [-l USER] [-p PORT] -- HOST COMMAND`, as docker-py's shell-out builds it."""
    u = urlsplit(url)
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if u.username:
        argv += ["-l", u.username]
    if u.port:
        argv += ["-p", str(u.port)]
    return [*argv, "--", u.hostname or "", command]


def classify(url: str, code: int, output: str) -> tuple[str, str] | None:
    """ssh's exit and words → (what is wrong, what to do); None when nothing is recognised
    (or the probe worked: then the engine's own error stands)."""
    u = urlsplit(url)
    target = f"{u.username}@{u.hostname}" if u.username else str(u.hostname)
    low = output.lower()
    # "permission denied while trying to connect" (the docker socket) before ssh's own
    cases = sorted(_CASES, key=lambda c: "while trying" not in c[0])
    for words, wrong, todo in cases:
        if words in low:
            return wrong, todo.format(target=target, host=u.hostname)
    if code == 0:
        return None
    tail = output.strip().splitlines()[-1:] or [f"ssh exited with {code}"]
    return f"ssh {target} failed: {tail[0][:200]}", f"try ssh {target} docker version by hand"


def diagnose(url: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """Run the probe; (what is wrong, what to do), or None."""
    try:
        done = subprocess.run(
            ssh_argv(url, PROBE),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        return "there is no ssh command here", "install the OpenSSH client (openssh-client)"
    except subprocess.TimeoutExpired:
        return "ssh did not finish in time", "check the address and the network"
    output = (done.stdout + done.stderr).decode(errors="replace")
    return classify(url, done.returncode, output)
