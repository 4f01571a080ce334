"""The quick entry's I/O: raw questions to the host engine, and the docker CLI fallback.

Built-ins only, and few: a unix socket (`_socket`: `socket` would build its enums) with one
HTTP request per question (no http.client, docker-py or requests). The exec itself goes over
the engine's API (hal_io/exec_tty.py); `run_attached` (fork + exec + wait) runs the docker
CLI where that does not apply, and `run_captured` asks it (an engine over ssh: the CLI's own
ssh connection, as `docker -H ssh://…` makes it).
"""

from __future__ import annotations

import _socket
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Mapping
else:  # `signal` wraps this C module in enums, which cost claudy's start-up ~4 ms
    import _signal

TIMEOUT = 5.0


def engine_get(sock: str, path: str) -> bytes | None:
    """GET `path` from the engine at unix socket `sock`: the body of a 200, else None."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(TIMEOUT)
        s.connect(sock)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    except OSError:
        return None
    finally:
        s.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    return body if len(status) >= 2 and status[1] == b"200" else None


def run_captured(argv: list[str]) -> bytes | None:
    """Run `argv` (no terminal of its own: stdin and stderr /dev/null) and wait: its stdout
    when it exits 0, else None. A fork and an exec, not `subprocess` (claudy's start-up)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: stdout to the pipe, nothing read, nothing said
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(w, 1)
            os.dup2(null, 2)
            os.execv(argv[0], argv)  # noqa: S606 - the docker CLI, by its path
        finally:
            os._exit(127)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as out:
        while data := out.read(65536):
            chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks) if os.waitstatus_to_exitcode(status) == 0 else None


def find_program(env: Mapping[str, str], name: str) -> str | None:
    """`name` on `env`'s PATH (as `shutil.which`, without importing shutil)."""
    for d in (env.get("PATH") or os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def run_attached(argv: list[str]) -> int:
    """Run `argv` on this terminal and wait for it: its exit code (128+N when signal N ended
    it). Meanwhile keyboard signals are the child's (docker exec -it puts the terminal in raw
    mode; before that a ^C goes to both, and this process waits), and a SIGTERM or SIGHUP
    sent to claudy is passed on."""
    pid = os.fork()
    if pid == 0:  # the child: default signal handling, then the program
        try:
            os.execv(argv[0], argv)  # noqa: S606 - the terminal goes to docker exec
        finally:
            os._exit(127)
    saved = {sig: _signal.signal(sig, _signal.SIG_IGN) for sig in (_signal.SIGINT, _signal.SIGQUIT)}
    for sig in (_signal.SIGTERM, _signal.SIGHUP):
        saved[sig] = _signal.signal(sig, lambda n, _f: os.kill(pid, n))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue
    for sig, handler in saved.items():
        _signal.signal(sig, handler)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
