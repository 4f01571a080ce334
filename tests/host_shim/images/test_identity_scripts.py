"""The worker image's identity helpers, run as the image runs them: `hal-worker
git-credential` (git's helper for github.com) and `hal-connect` (ssh's ProxyCommand through
an HTTP CONNECT proxy; here a small one on loopback in front of an echo server)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parents[3] / "host_shim" / "images"
TOKEN = "ghp_TESTtoken0123456789"  # noqa: S105 - a test marker, no real token


def credential(run_dir: Path, request: str, action: str = "get") -> str:
    done = subprocess.run(
        ["sh", str(IMAGES / "hal-worker"), "git-credential", action],
        input=request,
        env={"PATH": os.environ["PATH"], "HAL_WORKER_RUN_DIR": str(run_dir)},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout


def test_the_helper_answers_for_github_over_https_only(tmp_path: Path) -> None:
    (tmp_path / "github-token").write_text(TOKEN)
    ok = credential(tmp_path, "protocol=https\nhost=github.com\npath=a/b.git\n\n")
    assert ok == f"username=x-access-token\npassword={TOKEN}\n"
    for other in (
        "protocol=https\nhost=evil.example\n\n",
        "protocol=http\nhost=github.com\n\n",
        "protocol=https\nhost=github.com.evil.example\n\n",
        "protocol=https\nhost=api.github.com\n\n",
    ):
        assert credential(tmp_path, other) == "", other
    assert credential(tmp_path, "protocol=https\nhost=github.com\n\n", "store") == ""
    (tmp_path / "github-token").unlink()  # not opted in: nothing
    assert credential(tmp_path, "protocol=https\nhost=github.com\n\n") == ""


def test_git_itself_gets_the_token_through_the_helper(tmp_path: Path) -> None:
    """`git credential fill` with a system gitconfig like the parent writes."""
    from hal_common.identity import GitIdentity, gitconfig_text

    (tmp_path / "github-token").write_text(TOKEN)
    helper = tmp_path / "hal-worker"
    shutil.copy(IMAGES / "hal-worker", helper)
    helper.chmod(0o755)
    text = gitconfig_text(GitIdentity("A", "a@x.test"), github=True)
    (tmp_path / "gitconfig").write_text(text.replace("/usr/local/bin/hal-worker", str(helper)))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_CONFIG_SYSTEM": str(tmp_path / "gitconfig"),
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "HAL_WORKER_RUN_DIR": str(tmp_path),
        "GIT_TERMINAL_PROMPT": "0",
    }

    def fill(url: str) -> str:
        done = subprocess.run(
            ["git", "credential", "fill"], input=f"url={url}\n\n", env=env,
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return done.stdout

    assert f"password={TOKEN}" in fill("https://github.com/o/r.git")
    assert TOKEN not in fill("https://gitlab.com/o/r.git")


@pytest.fixture
def echo_behind_proxy() -> Iterator[tuple[int, list[bytes]]]:
    """(proxy port, the CONNECT lines it saw): tunnels to a loopback echo server for
    `echo.test:22`, answers 403 to anything else."""
    echo = socket.create_server(("127.0.0.1", 0))
    proxy = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve_echo() -> None:
        while True:
            try:
                conn, _ = echo.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    def serve_proxy() -> None:
        while True:
            try:
                conn, _ = proxy.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            line = head.split(b"\r\n")[0]
            seen.append(line)
            if line != b"CONNECT echo.test:22 HTTP/1.1":
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\nnot in allowlist\n")
                conn.close()
                continue
            up = socket.create_connection(echo.getsockname())
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

            def pipe(a: socket.socket, b: socket.socket) -> None:
                while data := a.recv(4096):
                    b.sendall(data)
                b.shutdown(socket.SHUT_WR)

            threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
            threading.Thread(target=pipe, args=(up, conn), daemon=True).start()

    for fn in (serve_echo, serve_proxy):
        threading.Thread(target=fn, daemon=True).start()
    yield proxy.getsockname()[1], seen
    echo.close()
    proxy.close()


def connect(port: int, host: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["python3", "-I", str(IMAGES / "hal-connect"), host, "22"],
        input=data,
        env={"PATH": os.environ["PATH"], "HTTPS_PROXY": f"http://127.0.0.1:{port}"},
        capture_output=True,
        timeout=20,
        check=False,
    )


def test_hal_connect_tunnels_through_connect_and_says_a_refusal(
    echo_behind_proxy: tuple[int, list[bytes]],
) -> None:
    port, seen = echo_behind_proxy
    payload = bytes(range(256)) * 400  # binary, 100 KiB: ssh's packets must pass unchanged
    done = connect(port, "echo.test", payload)
    assert done.returncode == 0, done.stderr
    assert done.stdout == payload
    refused = connect(port, "other.test", b"")
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"refused other.test:22: HTTP/1.1 403 Forbidden not in allowlist" in refused.stderr
    assert seen == [b"CONNECT echo.test:22 HTTP/1.1", b"CONNECT other.test:22 HTTP/1.1"]
    bad = connect(port, "a b", b"")
    assert bad.returncode == 1 and b"not a host name" in bad.stderr
