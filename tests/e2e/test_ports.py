"""End to end, on a real parent made by claudy with the real worker image: a worker with
`[worker] ports = [3000]` runs an HTTP server on 3000, and the host fetches it at the URL
`claudy ports --json` lists; a second worker wanting 3000 gets the next host port; a host
port another program holds at create moves the parent to the next free range (and claudy
says so); a stopped worker's host port is kept for it, and it gets its URL back."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import container_name, session_name
from hal_testing.host import HostParent
from hal_testing.http_stub import fetch, serve_argv
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

MARK = f"hal-ports-{uuid.uuid4().hex[:8]}"
SIZE = 4


def free_block(size: int) -> int:
    """The first port of `size + 1` free loopback ports in a row (the test holds the first)."""
    first = 47300
    while first < 60000:
        for p in range(first, first + size + 1):
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


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> Iterator[tuple[HostParent, int]]:
    first = free_block(SIZE)
    p = host_parents(
        "ports",
        worker='memory = "1g"\nports = [3000]\n',
        env={"HAL9000_PARENT_PORTS": f"{first}-{first + SIZE - 1}"},
    )
    with socket.socket() as held:  # another program on the range's first port
        held.bind(("127.0.0.1", first))
        held.listen(1)
        res = p.claudy("-d", str(p.project("one")))
        assert res.returncode == 0, res.stderr + res.stdout
    moved = f"{first + 1}-{first + SIZE}"
    assert (
        f"host port 127.0.0.1:{first} is taken by another program: the parent publishes "
        f"{moved} instead"
    ) in " ".join(res.stderr.split()), res.stderr
    yield p, first + 1


def ports(p: HostParent) -> list[dict[str, Any]]:
    res = p.claudy("ports", "--json")
    assert res.returncode == 0, res.stderr
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    validate("ports", rows)
    return rows


def url_of(p: HostParent, proj: Path) -> str | None:
    name = session_name(str(proj))
    found = [r for r in ports(p) if r["name"] == name and r["port"] == 3000]
    return found[0]["url"] if found else None


def serve(p: HostParent, proj: Path, mark: str) -> None:
    p.inner("exec", "-d", container_name(session_name(str(proj))), *serve_argv(3000, mark))


def answers(url: str, mark: str) -> bool:
    return retry_until(lambda: fetch(url) == mark, 15, raises=False)


def test_a_workers_server_is_fetched_from_the_host_at_the_listed_url(
    env: tuple[HostParent, int],
) -> None:
    p, base = env
    one = p.project("one")
    serve(p, one, f"{MARK}-one")
    assert retry_until(lambda: url_of(p, one) is not None, 10, raises=False), ports(p)
    url = url_of(p, one)
    assert url == f"http://127.0.0.1:{base}"
    t0 = time.monotonic()
    assert answers(url, f"{MARK}-one"), fetch(url)
    print(f"\nfirst answer through the relay after {time.monotonic() - t0:.2f}s")
    published = p.parent.attrs["HostConfig"]["PortBindings"]
    assert published[f"{base}/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(base)}]
    human = p.claudy("ports")
    assert url in human.stdout and session_name(str(one)) in human.stdout, human.stdout


def test_a_second_worker_wanting_3000_gets_the_next_host_port(env: tuple[HostParent, int]) -> None:
    p, base = env
    one, two = p.project("one"), p.project("two")
    assert p.claudy("-d", str(two)).returncode == 0
    serve(p, two, f"{MARK}-two")
    assert retry_until(lambda: url_of(p, two) is not None, 10, raises=False), ports(p)
    assert url_of(p, two) == f"http://127.0.0.1:{base + 1}"
    assert answers(f"http://127.0.0.1:{base + 1}", f"{MARK}-two")
    assert fetch(f"http://127.0.0.1:{base}") == f"{MARK}-one"  # the first keeps its own
    record = json.loads(p.sh("cat /data/ports.json"))
    assert {(r["name"], r["host_port"]) for r in record["ports"]} == {
        (session_name(str(one)), base),
        (session_name(str(two)), base + 1),
    }


def test_a_stopped_worker_keeps_its_host_port_and_gets_its_url_back(
    env: tuple[HostParent, int],
) -> None:
    p, base = env
    one, three = p.project("one"), p.project("three")
    p.sh(f"hal-agent stop {session_name(str(one))}")
    assert retry_until(lambda: url_of(p, one) is None, 10, raises=False)
    assert fetch(f"http://127.0.0.1:{base}") is None  # nothing relays there now
    assert p.claudy("-d", str(three)).returncode == 0
    assert retry_until(lambda: url_of(p, three) is not None, 10, raises=False)
    assert url_of(p, three) == f"http://127.0.0.1:{base + 2}"  # not the stopped one's
    p.sh(f"hal-agent start {session_name(str(one))}")
    assert retry_until(lambda: url_of(p, one) == f"http://127.0.0.1:{base}", 10, raises=False)
    serve(p, one, f"{MARK}-one-again")
    assert answers(f"http://127.0.0.1:{base}", f"{MARK}-one-again")


def test_a_full_range_is_said_with_the_workers_holding_it(env: tuple[HostParent, int]) -> None:
    p, base = env
    four, five = p.project("four"), p.project("five")
    assert p.claudy("-d", str(four)).returncode == 0  # the range's last port
    assert retry_until(lambda: url_of(p, four) is not None, 10, raises=False)
    assert p.claudy("-d", str(five)).returncode == 0
    name = session_name(str(five))
    row = [r for r in ports(p) if r["name"] == name]
    assert row and row[0]["url"] is None, row
    problem = row[0]["problem"]
    assert f"{name}:3000 has no host port" in problem
    assert f"{base}-{base + SIZE - 1} ({SIZE} ports) is full, held by" in problem
    assert f"{session_name(str(p.project('one')))}:3000 (:{base})" in problem
    health = json.loads(p.sh("hal-agent health --json"))
    assert any(f"{name}:3000 has no host port" in e["text"] for e in health["errors"])
