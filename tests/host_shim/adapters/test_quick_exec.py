"""The quick entry's `docker exec -it` over the engine's API, on a real engine and a real
pseudo-terminal: the size reaches the exec at once and again on SIGWINCH, typed bytes
reach the process raw, its exit code comes back, the terminal is restored, a detach (the
detach keys) is 0, and an exec that cannot be made touches nothing (None: the docker CLI
path runs instead)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import docker
import pytest

from hal_common.layout import ParentLayout
from hal_common.protocol import DETACH_KEYS
from host_shim.adapters.quick_exec import exec_attached
from host_shim.core.hint import exec_parts

pytestmark = pytest.mark.docker


@pytest.fixture
def box(
    dclient: docker.DockerClient, built_images: dict[str, str], labelled: dict[str, str]
) -> Iterator[str]:
    c = dclient.containers.run(
        built_images["worker"], ["sleep", "infinity"], detach=True, labels=labelled, init=True,
        entrypoint=[], network_mode="none",
    )  # fmt: skip
    yield str(c.name)
    c.remove(force=True)


@pytest.fixture
def sock(docker_host: str) -> str:
    url = urlparse(docker_host)
    if url.scheme != "unix":
        pytest.skip("the quick exec speaks to a unix socket only (else the docker CLI runs)")
    return url.path


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Term:
    """`exec_attached` in a child process whose terminal is a pty this test holds."""

    def __init__(self, run: Callable[[], int | None], rows: int = 30, cols: int = 100) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: its stdin/stdout are the pty's other end
            try:
                code = run()
                before = termios.tcgetattr(0)[3] & termios.ICANON
                os.write(1, f"\r\n<<{code} icanon={int(bool(before))}>>\r\n".encode())
            finally:
                os._exit(0)
        self.pid, self.fd, self.out = pid, fd, b""
        set_size(fd, rows, cols)

    def read_until(self, what: bytes, timeout: float = 20) -> bytes:
        end = time.monotonic() + timeout
        while what not in self.out and time.monotonic() < end:
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError:
                    break
        assert what in self.out, self.out[-2000:]
        return self.out

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


# The size: in the exec's create where the engine takes it (API 1.42+), else (as docker
# exec does) by a resize right after the start, which the process may not have seen before
# its first output: asked once a line was typed.
SCRIPT = (
    "echo ready; read -r x; stty size; echo got:$x; "
    "trap 'stty size; echo resized' WINCH; echo armed; while :; do read -r y && exit $y; done"
)


def test_the_exec_runs_raw_on_this_terminal_with_its_size_and_exit_code(
    box: str, sock: str
) -> None:
    t = Term(lambda: exec_attached(sock, box, ["sh", "-c", SCRIPT], DETACH_KEYS))
    try:
        t.read_until(b"ready")
        t.type(b"hello\r")  # raw: the carriage return is the remote terminal's to translate
        assert b"30 100" in t.read_until(b"got:hello")
        t.read_until(b"armed")
        set_size(t.fd, 33, 111)  # the kernel sends the child SIGWINCH: the exec is resized
        assert b"33 111" in t.read_until(b"resized")
        t.type(b"7\r")
        t.read_until(b">>")
        assert b"<<7 icanon=1>>" in t.out  # the exit code, and the terminal back to cooked
    finally:
        t.close()


def test_a_detach_is_zero_and_a_missing_container_is_none(box: str, sock: str) -> None:
    t = Term(lambda: exec_attached(sock, box, ["sh", "-c", "echo up; sleep 60"], DETACH_KEYS))
    try:
        t.read_until(b"up")
        t.type(b"\x1d\x1d")  # ctrl-], ctrl-]: DETACH_KEYS
        t.read_until(b">>")
        assert b"<<0 icanon=1>>" in t.out
    finally:
        t.close()
    t = Term(lambda: exec_attached(sock, "hal-no-such-container", ["true"], DETACH_KEYS))
    try:
        t.read_until(b">>")
        assert b"<<None icanon=1>>" in t.out
    finally:
        t.close()


def test_the_hints_exec_splits_into_keys_container_and_command() -> None:
    from host_shim.core.fastpath import quick_attach_head
    from host_shim.core.hint import FALLBACK

    head = quick_attach_head("hal9000-x", ParentLayout())
    keys, container, cmd = exec_parts(head) or ("", "", [])
    assert (keys, container) == (DETACH_KEYS, "hal9000-x")
    assert cmd[:2] == ["sh", "-c"] and f"exit {FALLBACK}" in cmd[2]
    assert exec_parts(["exec", "-it", "hal9000-x", "sh"]) is None  # another shape: the CLI
    assert exec_parts(["exec", "-it", "--detach-keys", "k", "--user", "x"]) is None


def test_detach_keys_as_a_terminal_sends_them() -> None:
    from host_shim.adapters.quick_exec import key_bytes

    assert key_bytes(DETACH_KEYS) == b"\x1d\x1d"
    assert key_bytes("ctrl-p,ctrl-q") == b"\x10\x11" and key_bytes("ctrl-@,a") == b"\x00a"
