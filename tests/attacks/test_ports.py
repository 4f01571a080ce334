"""Attacks on the ports relays, from real workers of a real parent (made by claudy, the real
worker image): a relay reaches its worker's listed port and nothing else.

Every target answers with its own marker, and each is first shown to answer where it is
(so a broken relay would be seen): worker a lists 3000 and also serves an unlisted 4000;
worker b lists nothing and serves 3000 and 4000; the parent serves 3000 on its own
127.0.0.1. From the host, every published port is tried: only a's 3000 ever answers. From
inside the workers, the relays' ports on the parent's addresses are refused (a worker cannot
use a relay to reach another worker, or hairpin through the host). A stopped worker's host
port relays nothing.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator

import pytest
from libtmux.test.retry import retry_until

from hal_common.egress import GATEWAY
from hal_common.naming import container_name, session_name
from hal_testing.host import HostParent, parent_config
from hal_testing.http_stub import fetch, serve_argv

pytestmark = pytest.mark.e2e

MARK = f"hal-portattack-{uuid.uuid4().hex[:8]}"
SIZE = 4
CLIENT = r"""
use IO::Socket::INET;
my $c = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Timeout => 3)
    or do { print "REFUSED $!\n"; exit 0 };
print $c "GET / HTTP/1.0\r\n\r\n";
local $/; my $r = <$c>; print "GOT ", (defined $r ? $r : ""), "\n";
"""
PARENT_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = sys.argv[1].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
HTTPServer(("127.0.0.1", 3000), H).serve_forever()
"""


def free_block(size: int) -> int:
    first = 48300
    while first < 60000:
        for p in range(first, first + size):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    first = p + 1
                    break
        else:
            return first
    raise RuntimeError("no free block of loopback ports")


def in_worker(p: HostParent, name: str, *argv: str, detach: bool = False) -> str:
    c = container_name(session_name(str(p.root / name)))
    return p.inner("exec", *(["-d"] if detach else []), c, *argv, check=False)


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> Iterator[tuple[HostParent, range]]:
    first = free_block(SIZE)
    p = host_parents(
        "portattack",
        worker='memory = "1g"\nports = [3000]\n',
        env={"HAL9000_PARENT_PORTS": f"{first}-{first + SIZE - 1}"},
    )
    res = p.claudy("-d", str(p.project("a")))
    assert res.returncode == 0, res.stderr + res.stdout
    # b is made with no listed port
    p.config_file.write_text(parent_config(p.name, p.root, 'memory = "1g"\n'))
    res = p.claudy("-d", str(p.project("b")))
    assert res.returncode == 0, res.stderr + res.stdout
    for name in ("a", "b"):
        for port in (3000, 4000):
            in_worker(p, name, *serve_argv(port, f"{MARK}-{name}{port}"), detach=True)
    p.parent.exec_run(["python3", "-c", PARENT_SERVER, f"{MARK}-parent3000"], detach=True)
    # each target answers where it is: from the parent itself, and from inside its worker
    for name in ("a", "b"):
        ip = p.inner(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container_name(session_name(str(p.root / name))),
        )  # fmt: skip
        for port in (3000, 4000):
            url, want = f"http://{ip}:{port}/", f"{MARK}-{name}{port}"

            def answers(url: str = url, want: str = want) -> bool:
                return want in p.sh(f"curl -s -m 3 --noproxy '*' {url} || true")

            assert retry_until(answers, 15, raises=False), (name, port)
    assert retry_until(
        lambda: f"{MARK}-parent3000" in p.sh("curl -s -m 3 http://127.0.0.1:3000/ || true"),
        15,
        raises=False,
    )
    yield p, range(first, first + SIZE)


def test_only_the_listed_port_of_its_own_worker_answers_on_the_host(
    env: tuple[HostParent, range],
) -> None:
    _, published = env
    own = f"http://127.0.0.1:{published[0]}"
    assert retry_until(lambda: fetch(own) == f"{MARK}-a3000", 15, raises=False), fetch(own)
    seen = {port: fetch(f"http://127.0.0.1:{port}") for port in published}
    assert seen[published[0]] == f"{MARK}-a3000"
    others = [body for port, body in seen.items() if port != published[0]]
    assert others == [None] * (SIZE - 1), seen  # b's servers, a's 4000, the parent's: none


def test_a_worker_cannot_reach_the_relays_from_inside(env: tuple[HostParent, range]) -> None:
    p, published = env
    parent_ip = next(iter(p.parent.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    for name in ("a", "b"):
        for address in (GATEWAY, parent_ip, "127.0.0.1"):
            out = in_worker(p, name, "perl", "-e", CLIENT, address, str(published[0]))
            assert MARK not in out and "REFUSED" in out, (name, address, out)


def test_a_stopped_workers_host_port_relays_nothing(env: tuple[HostParent, range]) -> None:
    p, published = env
    own = f"http://127.0.0.1:{published[0]}"
    p.sh(f"hal-agent stop {session_name(str(p.root / 'a'))}")
    assert retry_until(lambda: fetch(own) is None, 15, raises=False), fetch(own)
    assert all(fetch(f"http://127.0.0.1:{port}") is None for port in published)
