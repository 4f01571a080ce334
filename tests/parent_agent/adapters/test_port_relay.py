"""The port relays against real sockets: each listener forwards to its (session, port)'s
address as `target` says at connect time, and nowhere when it says none."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from parent_agent.adapters.port_relay import PortRelays


def _server(reply: bytes) -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)

    def serve() -> None:
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            with c:
                c.recv(1024)
                c.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return s, s.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        out = b""
        while chunk := c.recv(1024):
            out += chunk
        return out


@pytest.fixture
def relays() -> Iterator[
    tuple[PortRelays, dict[tuple[str, int], str | None], list[tuple[str, int]]]
]:
    where: dict[tuple[str, int], str | None] = {}
    asked: list[tuple[str, int]] = []

    def target(session: str, port: int) -> str | None:
        asked.append((session, port))
        return where.get((session, port))

    r = PortRelays(target, host="127.0.0.1")
    yield r, where, asked
    r.stop()


def test_each_host_port_reaches_its_workers_port_only(
    relays: tuple[PortRelays, dict[tuple[str, int], str | None], list[tuple[str, int]]],
) -> None:
    r, where, asked = relays
    a, a_port = _server(b"from a")
    b, b_port = _server(b"from b")
    h1, h2 = _free_port(), _free_port()
    where[("a", a_port)] = "127.0.0.1"
    where[("b", b_port)] = "127.0.0.1"
    assert r.set_mapping({h1: ("a", a_port), h2: ("b", b_port)}) == {}
    assert _ask(h1) == b"from a" and _ask(h2) == b"from b"
    assert asked == [("a", a_port), ("b", b_port)]  # asked per connection, its own pair
    # the worker stopped (the target knows no address): the connection is closed, unrelayed
    where[("a", a_port)] = None
    assert _ask(h1) == b""
    # the mapping went: nothing listens there any more
    r.set_mapping({h2: ("b", b_port)})
    with pytest.raises(OSError):
        _ask(h1)
    assert r.listening == {h2: ("b", b_port)}
    a.close()
    b.close()


def test_a_port_that_cannot_be_listened_on_is_reported(
    relays: tuple[PortRelays, dict[tuple[str, int], str | None], list[tuple[str, int]]],
) -> None:
    r, _, _ = relays
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        problems = r.set_mapping({port: ("a", 3000)})
    assert list(problems) == [port] and "cannot listen on 127.0.0.1:" in problems[port]
