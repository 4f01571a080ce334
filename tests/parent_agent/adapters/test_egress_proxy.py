"""The egress proxy and the gates against real sockets, on loopback only.

Names the policy would have to resolve are answered by a fake resolver (`RESOLVE`): no
lookup leaves the machine, and no connection goes anywhere but 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest

from hal_common.egress import Address, policy
from hal_common.protocol import EgressRow
from hal_testing.loopback import (
    Server,
    client_context,
    echo,
    read_head,
    recv_all,
    recv_until,
    self_signed,
    server_context,
)
from parent_agent.adapters.egress_log import EgressLog, rotated, tail
from parent_agent.adapters.egress_proxy import EgressProxy, ProxyLimits, own_addresses

RESOLVE: dict[str, list[str]] = {
    "echo.test": ["127.0.0.1"],
    "sneaky.test": ["127.0.0.2"],  # a name leading to a special address
    "lan.test": ["10.0.0.1"],  # never connected to: refused before any connect
    "mixed.test": ["10.0.0.1", "127.0.0.1"],
}
looked_up: list[str] = []


def fake_resolve(host: str, port: int) -> list[Address]:
    looked_up.append(host)
    if host not in RESOLVE:
        raise OSError("no such name")
    return [ip_address(a) for a in RESOLVE[host]]


@pytest.fixture
def echo_server() -> Iterator[Server]:
    with Server(echo) as s:
        yield s


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "log" / "egress.jsonl"


def _proxy(log_path: Path, allow: list[str], **limits: float) -> EgressProxy:
    p = EgressProxy(
        policy("allowlist", allow),
        log_path,
        listen=("127.0.0.1", 0),
        who={"127.0.0.1": "worker-1"}.get,
        limits=ProxyLimits(**limits),  # type: ignore[arg-type]
        resolve=fake_resolve,
    )
    p.start()
    return p


@pytest.fixture
def make(log_path: Path) -> Iterator[list[EgressProxy]]:
    made: list[EgressProxy] = []
    yield made
    for p in made:
        p.stop()


def connect(proxy: EgressProxy) -> socket.socket:
    s = socket.create_connection(proxy.address, timeout=5)
    return s


def tunnel(proxy: EgressProxy, target: str) -> tuple[socket.socket, bytes]:
    s = connect(proxy)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    return s, recv_until(s, b"\r\n\r\n")


def status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def rows(log_path: Path) -> list[EgressRow]:
    return tail(log_path, 100)


def test_connect_tunnels_to_an_allowed_address(
    make: list[EgressProxy], log_path: Path, echo_server: Server
) -> None:
    p = _proxy(log_path, ["127.0.0.1"])
    make.append(p)
    s, head = tunnel(p, f"127.0.0.1:{echo_server.port}")
    assert status(head) == 200
    s.sendall(b"ping")
    assert recv_until(s, b"ping") == b"ping"
    s.shutdown(socket.SHUT_WR)  # a half-close goes through; the echo closes in turn
    assert recv_all(s) == b""
    (row,) = rows(log_path)
    assert row.to_json() | {"t": 0} == {
        "t": 0,
        "worker": "worker-1",
        "client": "127.0.0.1",
        "host": "127.0.0.1",
        "port": echo_server.port,
        "addr": "127.0.0.1",
        "verdict": "allow",
        "rule": "127.0.0.1",
        "method": "CONNECT",
    }
    assert p.last_denial is None


def test_connect_carries_tls_end_to_end(
    make: list[EgressProxy], log_path: Path, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    with Server(echo, tls=server_context(cert, key)) as tls_echo:
        p = _proxy(log_path, [f"echo.test:{tls_echo.port}"])
        make.append(p)
        # a name entry and a public address are the normal case; here the name leads to
        # loopback, so the policy needs the address too
        p.set_policy(policy("allowlist", [f"echo.test:{tls_echo.port}", "127.0.0.1"]))
        raw, head = tunnel(p, f"echo.test:{tls_echo.port}")
        assert status(head) == 200
        with client_context(cert).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"over tls")
            assert recv_until(s, b"over tls") == b"over tls"
    (row,) = rows(log_path)
    assert (row.host, row.addr, row.verdict, row.rule) == (
        "echo.test",
        "127.0.0.1",
        "allow",
        "127.0.0.1",
    )


def test_plain_http_is_rewritten_and_a_chunked_response_streams(
    make: list[EgressProxy], log_path: Path
) -> None:
    got: dict[str, bytes] = {}
    second = threading.Event()

    def streaming(conn: socket.socket) -> None:
        got["head"] = read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        assert second.wait(5)  # the client has the first chunk before the second exists
        conn.sendall(b"6\r\nsecond\r\n0\r\n\r\n")

    with Server(streaming) as origin:
        p = _proxy(log_path, ["127.0.0.1"])
        make.append(p)
        s = connect(p)
        s.sendall(
            f"GET http://127.0.0.1:{origin.port}/path?q=1 HTTP/1.1\r\nHost: fronted.example"
            "\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n"
            "Accept: */*\r\n\r\n".encode()
        )
        first = recv_until(s, b"first\r\n")
        assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b"5\r\nfirst\r\n")
        second.set()
        assert recv_all(s).endswith(b"6\r\nsecond\r\n0\r\n\r\n")
    head = got["head"].decode()
    assert head.startswith("GET /path?q=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{origin.port}" in head and "Accept: */*" in head
    assert "Proxy-" not in head and "Connection: close" in head and "fronted" not in head
    assert [r.method for r in rows(log_path)] == ["GET"]


@pytest.mark.parametrize(
    ("target", "allow", "code", "rule", "resolved"),
    [
        ("evil.test:443", ["127.0.0.1"], 403, "not in allowlist", False),  # by name, no lookup
        ("echo.test:22", ["echo.test:443"], 403, "port not allowed", False),  # by port
        ("127.0.0.1:1", ["127.0.0.1:2"], 403, "special address", False),  # by address
        ("sneaky.test:443", ["sneaky.test"], 403, "special address", True),  # name → loopback
        ("lan.test:443", ["lan.test"], 403, "special address", True),  # name → LAN
        ("169.254.169.254:80", ["*.test"], 403, "special address", False),  # metadata
        ("[::1]:80", ["127.0.0.1"], 403, "special address", False),
        ("nowhere.test:443", ["nowhere.test"], 502, "name not resolved", True),
    ],
)
def test_denials(
    make: list[EgressProxy],
    log_path: Path,
    target: str,
    allow: list[str],
    code: int,
    rule: str,
    resolved: bool,
) -> None:
    p = _proxy(log_path, allow)
    make.append(p)
    looked_up.clear()
    s, head = tunnel(p, target)
    assert status(head) == code
    body = (head + recv_all(s)).split(b"\r\n\r\n", 1)[1].decode()
    assert rule in body and target.rsplit(":", 1)[0].strip("[]") in body
    assert bool(looked_up) == resolved
    (row,) = rows(log_path)
    verdict = "deny" if code == 403 else "error"  # a name that does not resolve: no rule
    assert (row.verdict, row.rule, row.method) == (verdict, rule, "CONNECT")
    # the dashboard's last denial is what the policy refused, not a name that did not resolve
    assert p.last_denial == (row if code == 403 else None)


def test_a_name_with_a_special_and_an_allowed_address_connects_to_the_allowed_one(
    make: list[EgressProxy], log_path: Path, echo_server: Server
) -> None:
    RESOLVE["mixed.test"] = ["10.0.0.1", "127.0.0.1"]
    p = _proxy(log_path, ["mixed.test", f"127.0.0.1:{echo_server.port}"])
    make.append(p)
    _, head = tunnel(p, f"mixed.test:{echo_server.port}")
    assert status(head) == 200
    (row,) = rows(log_path)
    assert row.addr == "127.0.0.1"


def test_a_refused_connection_is_502(make: list[EgressProxy], log_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    p = _proxy(log_path, ["127.0.0.1"])
    make.append(p)
    _, head = tunnel(p, f"127.0.0.1:{port}")
    assert status(head) == 502


@pytest.mark.parametrize(
    "request_",
    [
        b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET https://127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\nbad header\r\n\r\n",
        b"CONNECT a\x00b.test:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a%2fb.test:443 HTTP/1.1\r\n\r\n",
    ],
)
def test_bad_requests_are_400(make: list[EgressProxy], log_path: Path, request_: bytes) -> None:
    p = _proxy(log_path, ["127.0.0.1"])
    make.append(p)
    s = connect(p)
    s.sendall(request_)
    assert status(recv_all(s)) == 400


def test_a_saved_policy_applies_to_the_next_request(
    make: list[EgressProxy], log_path: Path, echo_server: Server
) -> None:
    p = _proxy(log_path, [])
    make.append(p)
    target = f"127.0.0.1:{echo_server.port}"
    assert status(tunnel(p, target)[1]) == 403
    p.set_policy(policy("allowlist", [target]))
    open_tunnel, head = tunnel(p, target)
    assert status(head) == 200
    p.set_policy(policy("allowlist", []))
    assert status(tunnel(p, target)[1]) == 403
    open_tunnel.sendall(b"still open")  # a tunnel already open stays open
    assert recv_until(open_tunnel, b"still open") == b"still open"
    assert [r.verdict for r in rows(log_path)] == ["deny", "allow", "deny"]


def test_the_head_has_a_time_limit(make: list[EgressProxy], log_path: Path) -> None:
    p = _proxy(log_path, ["127.0.0.1"], head_timeout=0.5)
    make.append(p)
    s = connect(p)
    t0 = time.monotonic()
    s.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n")
    for _ in range(3):  # a byte now and then does not extend it (slowloris)
        time.sleep(0.2)
        try:
            s.sendall(b"X")
        except OSError:
            break
    answer = recv_all(s)
    assert status(answer) == 408 and time.monotonic() - t0 < 3


def test_the_head_has_a_size_limit(make: list[EgressProxy], log_path: Path) -> None:
    p = _proxy(log_path, ["127.0.0.1"], head_bytes=4096)
    make.append(p)
    s = connect(p)
    s.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-Pad: " + b"a" * 8192 + b"\r\n\r\n")
    assert status(recv_until(s, b"\r\n\r\n")) == 431


@pytest.mark.parametrize("bound", ["max_connections", "per_client"])
def test_connections_are_bounded(make: list[EgressProxy], log_path: Path, bound: str) -> None:
    p = _proxy(log_path, ["127.0.0.1"], head_timeout=5, **{bound: 2})
    make.append(p)
    held = [connect(p), connect(p)]
    for h in held:
        h.sendall(b"CONNECT")  # in the middle of a head
    deadline = time.monotonic() + 5
    while p.connections < 2:  # both accepted before the third arrives
        assert time.monotonic() < deadline
        time.sleep(0.01)
    third = connect(p)
    assert status(recv_all(third)) == 503
    for h in held:
        h.close()


def test_an_idle_tunnel_is_closed(
    make: list[EgressProxy], log_path: Path, echo_server: Server
) -> None:
    p = _proxy(log_path, ["127.0.0.1"], idle_timeout=0.3)
    make.append(p)
    s, head = tunnel(p, f"127.0.0.1:{echo_server.port}")
    assert status(head) == 200
    t0 = time.monotonic()
    assert recv_all(s) == b"" and time.monotonic() - t0 < 3


# -- the gates -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("auth", "code", "rule"),
    [
        ("Bearer s3cret", 200, "gate"),
        (None, 401, "gate: no token"),
        ("Bearer wrong", 401, "gate: wrong token"),
        ("Bearer s3cret2", 401, "gate: wrong token"),
        ("bearer s3cret", 401, "gate: wrong token"),
    ],
)
def test_a_gate_wants_the_token(
    make: list[EgressProxy], log_path: Path, auth: str | None, code: int, rule: str
) -> None:
    def service(conn: socket.socket) -> None:
        head = read_head(conn)
        body = head  # the head, as the service saw it
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    with Server(service) as upstream:
        p = _proxy(log_path, [])
        make.append(p)
        gate = _free_port()
        assert p.set_gates({gate: upstream.port}, "s3cret") == []
        s = socket.create_connection(("127.0.0.1", gate), timeout=5)
        lines = ["POST /mcp HTTP/1.1", "Host: x"] + ([f"Authorization: {auth}"] if auth else [])
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = recv_all(s)
        assert status(answer) == code
        if code == 200:
            assert b"POST /mcp HTTP/1.1" in answer.split(b"\r\n\r\n", 1)[1]
        else:
            assert b"WWW-Authenticate: Bearer" in answer
    (row,) = rows(log_path)
    assert (row.host, row.port, row.addr, row.method, row.rule) == (
        "127.0.0.1", gate, "127.0.0.1", "POST", rule,
    )  # fmt: skip
    assert row.verdict == ("allow" if code == 200 else "deny")


def test_gates_open_close_and_report_a_port_in_use(
    make: list[EgressProxy], log_path: Path, echo_server: Server
) -> None:
    p = _proxy(log_path, [])
    make.append(p)
    a, b = _free_port(), _free_port()
    assert p.set_gates({a: echo_server.port, b: echo_server.port}, "t") == []
    socket.create_connection(("127.0.0.1", b), timeout=5).close()
    assert p.set_gates({a: echo_server.port}, "t") == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", b), timeout=5)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        problems = p.set_gates({a: echo_server.port, busy.getsockname()[1]: 1}, "t")
    assert len(problems) == 1 and "cannot listen" in problems[0]
    socket.create_connection(("127.0.0.1", a), timeout=5).close()


def test_stop_closes_everything(
    make: list[EgressProxy], log_path: Path, echo_server: Server
) -> None:
    p = _proxy(log_path, ["127.0.0.1"])
    s, head = tunnel(p, f"127.0.0.1:{echo_server.port}")
    assert status(head) == 200
    address = p.address
    p.stop()
    p.stop()  # idempotent
    assert recv_all(s) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5)


# -- the log -------------------------------------------------------------------------------


def _row(i: int, worker: str | None = "w") -> EgressRow:
    return EgressRow(
        float(i), worker, "10.213.213.5", f"h{i}.example", 443, None, "deny", "r", "CONNECT"
    )


def test_the_log_rotates_and_tail_reads_both_files(tmp_path: Path) -> None:
    path = tmp_path / "egress.jsonl"
    log = EgressLog(path, max_bytes=1000)
    for i in range(30):
        log.append(_row(i, "a" if i % 2 else "b"))
    assert path.stat().st_size <= 1000 and rotated(path).stat().st_size <= 1000
    got = tail(path, 1000)
    assert [r.t for r in got] == sorted(r.t for r in got) and got[-1].t == 29
    assert len(got) < 30  # the oldest went with the rotation before last
    assert [r.t for r in tail(path, 3, "a")] == [25, 27, 29]
    assert json.loads(path.read_text().splitlines()[-1])["host"] == "h29.example"


def test_tail_skips_torn_lines_and_a_missing_log_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "egress.jsonl"
    assert tail(path, 10) == []
    EgressLog(path).append(_row(1))
    with path.open("a") as f:
        f.write('{"t": 2, "host": "torn\n[]\n')
    EgressLog(path).append(_row(3))
    assert [r.t for r in tail(path, 10)] == [1, 3]


def test_own_addresses_include_loopback() -> None:
    assert ip_address("127.0.0.1") in own_addresses()


def test_bytes_sent_with_the_head_and_a_large_transfer_arrive_whole(
    make: list[EgressProxy], log_path: Path, echo_server: Server
) -> None:
    p = _proxy(log_path, ["127.0.0.1"])
    make.append(p)
    s = connect(p)
    target = f"127.0.0.1:{echo_server.port}"
    s.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\nearly bytes".encode())  # no wait for 200
    answer = recv_until(s, b"early bytes")
    assert status(answer) == 200 and answer.endswith(b"\r\n\r\nearly bytes")
    blob = bytes(range(256)) * (16 << 10)  # 4 MiB: more than any buffer on the way
    got = bytearray()

    def read() -> None:
        while len(got) < len(blob):
            chunk = s.recv(1 << 16)
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    s.sendall(blob)
    reader.join(30)
    assert bytes(got) == blob


def test_a_stopped_proxy_starts_again(log_path: Path, echo_server: Server) -> None:
    p = _proxy(log_path, ["lan.test", "127.0.0.1"])
    p.stop()
    p.start()
    try:
        looked_up.clear()
        assert status(tunnel(p, f"127.0.0.1:{echo_server.port}")[1]) == 200
        assert status(tunnel(p, "lan.test:443")[1]) == 403  # resolved in a fresh pool
        assert looked_up == ["lan.test"]
    finally:
        p.stop()


@pytest.mark.parametrize("spelling", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1"])
def test_other_spellings_of_loopback_are_decided_on_the_address(
    make: list[EgressProxy], log_path: Path, echo_server: Server, spelling: str
) -> None:
    """In open mode a numeric name goes to the resolver (the real one: glibc reads these
    spellings itself, no query leaves), and the address it gives is special."""
    p = EgressProxy(policy("open", []), log_path, listen=("127.0.0.1", 0))
    p.start()
    make.append(p)
    _, head = tunnel(p, f"{spelling}:{echo_server.port}")
    assert status(head) == 403
    (row,) = rows(log_path)
    assert (row.addr, row.rule) == ("127.0.0.1", "special address")
    assert echo_server.served == 0
