"""The loop's control socket: commands ask the loop to act and wait for its answer.

`ControlServer` runs in `hal-agent run`: a thread accepts connections and serves each in a
thread of its own (at most `MAX_CLIENTS` at once: a spawn is not kept waiting behind a
services restart), which reads one request (at most `MAX_BYTES`, within `READ_TIMEOUT`), hands
it to the loop as a typed request with a `Reply`, waits for the loop's answer and writes it
back. The socket is 0600 and
root's, in the run directory, which no worker mounts; a peer that is neither root nor this
process's user is refused. `ask` is the client side, for the commands.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hal_common.errors import HalError, LoopUnavailable
from parent_agent.core.control import (
    MAX_BYTES,
    Answer,
    Request,
    encode_answer,
    encode_request,
    parse_answer,
    parse_request,
)

log = logging.getLogger(__name__)

READ_TIMEOUT = 5.0  # a client has this long to send its request
ANSWER_TIMEOUT = 600.0  # the loop has this long to answer (restarts wait for stops)
MAX_CLIENTS = 8  # connections served at once; one more is told the loop is busy
HINT = "hal-agent run is the parent's main process; `hal-agent logs --agent` has its log"


class Reply:
    """The loop's one answer to one request; the server thread waits for it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._answer = Answer(False, "no answer")

    def answer(self, answer: Answer) -> None:
        if not self._done.is_set():
            self._answer = answer
            self._done.set()

    def wait(self, timeout: float, stop: threading.Event) -> Answer | None:
        """The answer; None when `stop` is set or `timeout` passes first."""
        waited = 0.0
        while not self._done.wait(0.2):
            waited += 0.2
            if stop.is_set() or waited >= timeout:
                return None
        return self._answer


def _read(conn: socket.socket, within: float) -> bytes:
    """One message: up to a newline or the end of the stream, at most MAX_BYTES (+1, so
    that a longer one is seen as such), all of it `within` seconds (else TimeoutError)."""
    deadline = time.monotonic() + within
    data = b""
    while b"\n" not in data and len(data) <= MAX_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        conn.settimeout(left)
        chunk = conn.recv(MAX_BYTES + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0] if b"\n" in data else data


class ControlServer:
    """Serves the control socket at `path`; `submit(request, reply)` gives a request to the
    loop (it puts an event on the inbox), which answers through `reply`."""

    def __init__(self, path: Path, submit: Callable[[Request, Reply], None]) -> None:
        self.path = path
        self.submit = submit
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a crashed run's; only the loop serves it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o600)  # before listen(): until then no one can connect
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: a request being waited on is answered "shutting down"; joins."""
        self._stop.set()
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()
            self.path.unlink(missing_ok=True)
        self._wake_r.close()
        self._wake_w.close()

    def _serve(self) -> None:
        assert self._sock is not None  # noqa: S101 - set before the thread starts
        with selectors.DefaultSelector() as sel:
            sel.register(self._sock, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._sock and not self._stop.is_set():
                        try:
                            conn, _addr = self._sock.accept()
                        except OSError as e:
                            log.debug("control: accept failed: %s", e)
                            continue
                        self._dispatch(conn)

    def _dispatch(self, conn: socket.socket) -> None:
        """Serve `conn` in a thread of its own, or tell it the loop is busy (a command that
        can do its request itself then does: `fallback`)."""
        if not self._slots.acquire(blocking=False):
            with conn, contextlib.suppress(OSError):
                conn.settimeout(READ_TIMEOUT)
                busy = Answer(
                    False, f"the loop serves {MAX_CLIENTS} commands already", fallback=True
                )
                conn.sendall(encode_answer(busy))
            return

        def serve() -> None:
            try:
                with conn:
                    self._one(conn)
            finally:
                self._slots.release()

        threading.Thread(target=serve, name="control-client", daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(READ_TIMEOUT)
            if not _allowed(conn):
                conn.sendall(encode_answer(Answer(False, "not allowed")))
                return
            try:
                request = parse_request(_read(conn, READ_TIMEOUT))
            except ValueError as e:
                conn.sendall(encode_answer(Answer(False, f"bad request: {e}")))
                return
            reply = Reply()
            self.submit(request, reply)
            answer = reply.wait(ANSWER_TIMEOUT, self._stop)
            if answer is None:
                why = "the parent is shutting down" if self._stop.is_set() else "no answer in time"
                answer = Answer(False, why)
            conn.settimeout(READ_TIMEOUT)
            conn.sendall(encode_answer(answer))
        except OSError as e:  # the client went away (or timed out sending): nothing to answer
            log.debug("control: connection dropped: %s", e)


def _allowed(conn: socket.socket) -> bool:
    """Root, or the loop's own user (tests run it unprivileged)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (0, os.geteuid())


def ask(path: Path, request: Request, timeout: float = ANSWER_TIMEOUT) -> Answer:
    """Send one request to the loop and wait (up to `timeout`) for its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise LoopUnavailable(
                f"the parent's loop is not running (nothing listens on {path})", hint=HINT
            ) from None
        except PermissionError:
            raise HalError(
                f"cannot reach {path}: permission denied", hint="run it as root"
            ) from None
        try:
            sock.sendall(encode_request(request))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            data = _read(sock, timeout)
        except TimeoutError:
            raise LoopUnavailable(
                f"the parent's loop did not answer within {timeout:.0f}s", hint=HINT
            ) from None
        except OSError as e:
            raise LoopUnavailable(
                f"the parent's loop dropped the request: {e}", hint=HINT
            ) from None
    try:
        return parse_answer(data)
    except ValueError:
        raise LoopUnavailable(
            "the parent's loop closed the connection without an answer", hint=HINT
        ) from None
