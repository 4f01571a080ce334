"""`docker exec -it` over the engine's API (hal_io/exec_tty.py: claudy's quick entry and every
worker window), on a real engine and a real pseudo-terminal: the size reaches the exec at
once and again on SIGWINCH, typed bytes reach the process raw, its exit code comes back, the
terminal is restored, a detach (the detach keys) is 0, and an exec that cannot be made
touches nothing (NoExec: the docker CLI path runs instead). The script form runs as the
windows run it, in a Python with no site packages."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import docker
import pytest

from hal_common.layout import ParentLayout
from hal_common.protocol import DETACH_KEYS
from hal_io import exec_tty
from hal_io.exec_tty import NoExec, exec_attached, key_bytes
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

    def __init__(self, run: Callable[[], int | str], rows: int = 30, cols: int = 100) -> None:
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


def no_exec(sock: str, container: str) -> str:
    try:
        return str(exec_attached(sock, container, ["true"], DETACH_KEYS))
    except NoExec as e:
        return f"NoExec: {e}"


def test_a_detach_is_zero_and_a_missing_container_is_no_exec(box: str, sock: str) -> None:
    t = Term(lambda: exec_attached(sock, box, ["sh", "-c", "echo up; sleep 60"], DETACH_KEYS))
    try:
        t.read_until(b"up")
        t.type(b"\x1d\x1d")  # ctrl-], ctrl-]: DETACH_KEYS
        t.read_until(b">>")
        assert b"<<0 icanon=1>>" in t.out
    finally:
        t.close()
    t = Term(lambda: no_exec(sock, "hal-no-such-container"))
    try:
        t.read_until(b">>")
        assert b"<<NoExec: cannot exec in hal-no-such-container: No such container" in t.out
        assert b"icanon=1>>" in t.out
    finally:
        t.close()
    t = Term(lambda: no_exec("/nonexistent/d.sock", box))
    try:
        assert b"<<NoExec: cannot reach the Docker engine icanon=1>>" in t.read_until(b">>")
    finally:
        t.close()


def run_script(argv: list[str]) -> str:
    """exec_tty.py as a worker window runs it: `python -I -S` (no site packages), in a pty;
    what it printed, with its exit status."""
    script = str(Path(exec_tty.__file__))
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-I", "-S", script, *argv])  # noqa: S606
    set_size(fd, 24, 80)
    out = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return f"{out.decode(errors='replace')}<<{os.waitstatus_to_exitcode(status)}>>"


# Where the engine takes no size at create (API < 1.42), the resize right after the start may
# come after the process's first look: wait for it (bounded)
WAIT_SIZE = (
    'i=0; while s=$(stty size); [ "$s" = "0 0" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; '
)


def test_the_script_form_passes_env_and_exit_code(box: str, sock: str) -> None:
    out = run_script([sock, box, DETACH_KEYS, "TERM=tmux-256color", "HAL_X=a b", "--",
                      "sh", "-c", WAIT_SIZE + 'echo "$TERM/$HAL_X/$s"; exit 5'])  # fmt: skip
    assert "tmux-256color/a b/24 80" in out and out.endswith("<<5>>")
    out = run_script([sock, "hal-no-such-container", DETACH_KEYS, "--", "true"])
    assert "exec_tty: cannot exec in hal-no-such-container: No such container" in out
    assert out.endswith("<<125>>")


def test_the_script_form_says_its_usage() -> None:
    for argv in ([], ["s", "c", "k", "true"], ["s", "c", "k", "NOEQUALS", "--", "true"],
                 ["s", "c", "k", "--"]):  # fmt: skip
        out = run_script(argv)
        assert "usage: exec_tty.py SOCKET CONTAINER DETACH_KEYS" in out and out.endswith("<<2>>")


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
    assert key_bytes(DETACH_KEYS) == b"\x1d\x1d"
    assert key_bytes("ctrl-p,ctrl-q") == b"\x10\x11" and key_bytes("ctrl-@,a") == b"\x00a"
