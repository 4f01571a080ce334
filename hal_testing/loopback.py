"""Servers on 127.0.0.1 for the egress proxy's tests and benchmark: TCP and TLS echo, and
HTTP(S) that answers one request per connection. Traffic stays on loopback.

Each server runs in a thread of its own, serves until closed, and is a context manager.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost (openssl): (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_context(cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    return ctx


Handler = Callable[[socket.socket], None]


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Server:
    """`handle(conn)` per connection (TLS first when `tls` is given), on 127.0.0.1:port."""

    def __init__(self, handle: Handler, tls: ssl.SSLContext | None = None) -> None:
        outer = self

        class _H(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(10)
                try:
                    if tls is not None:
                        conn = tls.wrap_socket(conn, server_side=True)
                    handle(conn)
                except (OSError, ssl.SSLError):
                    pass
                finally:
                    outer.served += 1

        self.served = 0
        self._server = _Threaded(("127.0.0.1", 0), _H)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def echo(conn: socket.socket) -> None:
    """Send back what arrives, until the other side closes."""
    while data := conn.recv(65536):
        conn.sendall(data)


def read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def hello(conn: socket.socket) -> None:
    """One HTTP request → a small 200, then close (what the benchmark times)."""
    read_head(conn)
    body = b"hello\n"
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


def recv_until(conn: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    """Read until `marker` has arrived (or the peer closed); at most `limit` bytes."""
    data = b""
    while marker not in data and len(data) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recv_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data
