"""`docker exec -it` over the engine's API, from this process: no docker CLI.

Create the exec (with the terminal's size), start it with the connection hijacked, relay this
terminal to it raw, resize it on SIGWINCH, and return its exit code (0 after the detach keys,
as docker exec). This is what `docker exec -it --detach-keys KEYS CONTAINER CMD…` does,
without the docker CLI's own start-up (≈ 20 ms) and its ≈ 38 MB while attached.

Two users, both wanting it small:
- claudy's quick entry (host_shim/commands/quick.py) imports it: built-ins only, few of them
  (`_socket`, not `socket`, which builds its enums on import);
- every worker window in the parent runs it as a script, `python3 -I -S exec_tty.py SOCK
  CONTAINER KEYS [NAME=VALUE…] -- CMD…` (parent_agent/core/tmux.py): a Python with no site
  packages holds ≈ 9 MB where the docker CLI held ≈ 38 MB, per window.
Only unix sockets: anything else is the docker CLI's.
"""

from __future__ import annotations

import _socket
import os
import select
import sys
import termios
import time
from _json import encode_basestring_ascii as _js

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    import signal as _signal
else:  # `signal` wraps this C module in enums, which cost claudy's start-up ~4 ms
    import _signal

TIMEOUT = 5.0


class NoExec(Exception):
    """The exec could not be made; nothing was touched (the terminal is as it was)."""


def _request(sock: str, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body); (0, b"") when the engine
    cannot be reached or answers something that is not HTTP."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(TIMEOUT)
        s.connect(sock)
        head = (
            f"{method} {path} HTTP/1.0\r\nHost: docker\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        s.sendall(head.encode() + body)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    except OSError:
        return 0, b""
    finally:
        s.close()
    head_b, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    status = head_b.split(b"\r\n", 1)[0].split()
    ok = len(status) >= 2 and status[1].isdigit()
    return (int(status[1]), rest) if ok else (0, b"")


def _json_list(items: list[str]) -> str:
    return "[" + ",".join(_js(i) for i in items) + "]"


def _field(body: bytes, name: bytes) -> bytes | None:
    """The raw value of a top-level `"name":` in the engine's compact JSON (its own
    encoding: no spaces), up to the next comma or brace."""
    key = b'"' + name + b'":'
    i = body.find(key)
    if i < 0:
        return None
    i += len(key)
    j = min((k for k in (body.find(b",", i), body.find(b"}", i)) if k >= 0), default=len(body))
    return body[i:j]


def _size(fd: int) -> tuple[int, int] | None:
    try:
        cols, rows = os.get_terminal_size(fd)
    except OSError:
        return None
    return (rows, cols) if rows > 0 and cols > 0 else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def exec_attached(
    sock: str, container: str, cmd: list[str], detach_keys: str, env: list[str] | None = None
) -> int:
    """`docker exec -it --detach-keys KEYS [-e NAME=VALUE…] CONTAINER CMD…` on this terminal,
    through the engine at unix socket `sock`: CMD's exit code (0 when detached, 128+N when
    signal N ended this process). Raises NoExec, touching nothing, when the exec cannot be
    made (no engine, no such container, not running)."""
    size = _size(0)
    console = f',"ConsoleSize":[{size[0]},{size[1]}]' if size else ""
    env_json = f',"Env":{_json_list(env)}' if env else ""
    create = (
        '{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":true,'
        f'"DetachKeys":{_js(detach_keys)},"Cmd":{_json_list(cmd)}{env_json}{console}}}'
    )
    status, body = _request(sock, "POST", f"/containers/{container}/exec", create.encode())
    raw_id = _field(body, b"Id") if status == 201 else None
    exec_id = raw_id.strip(b'"').decode("ascii", "replace") if raw_id else ""
    if not exec_id.isalnum():
        raise NoExec(_refusal(status, body, container))
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(TIMEOUT)
        conn.connect(sock)
        start = b'{"Detach":false,"Tty":true}'
        conn.sendall(
            f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(start)}\r\n\r\n".encode()
            + start
        )
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = conn.recv(4096)
            if not data:
                break
            head += data
    except OSError as e:
        conn.close()
        raise NoExec(f"cannot start the exec in {container}: {e}") from e
    head, sep, early = head.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or status_line[1] not in (b"101", b"200"):
        conn.close()
        raise NoExec(f"the engine did not start the exec in {container}")
    return _relay(sock, conn, exec_id, early, key_bytes(detach_keys))


def _refusal(status: int, body: bytes, container: str) -> str:
    """Why the engine made no exec, in its own words where it gave them."""
    if status == 0:
        return "cannot reach the Docker engine"
    import json  # the error path only: the quick entry does not pay for it otherwise

    try:
        said = json.loads(body[:4096]).get("message")
    except (ValueError, AttributeError):
        said = None
    return f"cannot exec in {container}: {said if isinstance(said, str) else f'HTTP {status}'}"


def _resize(sock: str, exec_id: str) -> None:
    size = _size(0)
    if size is not None:
        _request(sock, "POST", f"/exec/{exec_id}/resize?h={size[0]}&w={size[1]}")


class _Ended(Exception):
    def __init__(self, sig: int) -> None:
        self.sig = sig


def _ended(sig: int, _frame: object) -> None:
    raise _Ended(sig)


def key_bytes(keys: str) -> bytes:
    """docker's detach keys ("ctrl-],ctrl-]") as the bytes a terminal sends for them."""
    out = bytearray()
    for key in keys.split(","):
        if key.startswith("ctrl-") and len(key) == 6:
            c = key[5].upper()
            out.append(ord(c) - 64 if "@" <= c <= "_" else 0x7F if c == "?" else 0)
        elif len(key) == 1:
            out += key.encode()
    return bytes(out)


# What the engine writes into the stream when the detach keys end the attach
DETACHED = b"exec attach failed: error on attach stdin: read escape sequence"


def _relay(sock: str, conn: _socket.socket, exec_id: str, early: bytes, keys: bytes) -> int:
    """This terminal ⇄ the hijacked exec, raw, until the exec's side closes; its code (0
    after the detach keys: the process stays, as with docker exec)."""
    typed = b""  # the tail of what was typed, where the detach keys are looked for
    detached = False
    saved_tty = termios.tcgetattr(0)
    handlers = {
        _signal.SIGWINCH: _signal.signal(_signal.SIGWINCH, lambda _n, _f: _resize(sock, exec_id)),
        _signal.SIGTERM: _signal.signal(_signal.SIGTERM, _ended),
        _signal.SIGHUP: _signal.signal(_signal.SIGHUP, _ended),
    }
    try:
        raw = termios.tcgetattr(0)  # cfmakeraw, as docker's own terminal code sets it
        raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                    | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)  # fmt: skip
        raw[1] &= ~termios.OPOST
        raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG
                    | termios.IEXTEN)  # fmt: skip
        raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
        termios.tcsetattr(0, termios.TCSADRAIN, raw)
        _resize(sock, exec_id)
        conn.settimeout(None)
        if early:
            _write_all(1, early)
        fd = conn.fileno()
        watch = [0, fd]
        while True:
            ready, _, _ = select.select(watch, [], [])
            if fd in ready:
                data = conn.recv(65536)
                if not data:
                    break
                if detached and data.strip().startswith(DETACHED):
                    continue  # the engine's word for it, not the process's output
                _write_all(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    conn.sendall(data)
                    typed = (typed + data)[-64:]
                    detached = detached or (bool(keys) and keys in typed)
                else:  # no more input: say so, and read what is left
                    conn.shutdown(_socket.SHUT_WR)
                    watch = [fd]
    except _Ended as e:
        return 128 + e.sig
    except OSError:
        pass
    finally:
        conn.close()
        termios.tcsetattr(0, termios.TCSADRAIN, saved_tty)
        for sig, handler in handlers.items():
            _signal.signal(sig, handler)
    return 0 if detached else _exit_code(sock, exec_id)


def _exit_code(sock: str, exec_id: str) -> int:
    """The exec's exit code once the engine has it. The stream closes as the process ends,
    and the engine records the exit a moment later: a process still running after half a
    second was detached from (the detach keys), which is 0, as docker exec says."""
    for _ in range(25):
        status, body = _request(sock, "GET", f"/exec/{exec_id}/json")
        if status != 200:
            return 1
        code = _field(body, b"ExitCode")
        if _field(body, b"Running") == b"false" and code is not None:
            return int(code) if code.lstrip(b"-").isdigit() else 1
        time.sleep(0.02)
    return 0


USAGE = "usage: exec_tty.py SOCKET CONTAINER DETACH_KEYS [NAME=VALUE...] -- CMD [ARG...]"


def main(argv: list[str]) -> int:
    """The script form: what a worker window runs (see the module's text)."""
    try:
        sock, container, keys, *rest = argv
        cut = rest.index("--")
    except ValueError:
        print(USAGE, file=sys.stderr)
        return 2
    env, cmd = rest[:cut], rest[cut + 1 :]
    if not cmd or not all("=" in e for e in env):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return exec_attached(sock, container, cmd, keys, env)
    except NoExec as e:
        print(f"exec_tty: {e}", file=sys.stderr)
        return 125  # docker exec's own code when the exec itself fails


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
