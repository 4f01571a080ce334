"""Attacks through the project file: the agent writes `.hal9000.toml` (its project is its own to
write) to give itself egress and limits the user never gave, from inside a real worker of a
real parent (driven through claudy).

The target is an HTTP server of the test's own on this machine's address (a special address:
only an IP entry reaches it). It answers from the parent, so a broken boundary would be
seen; the project file's entry reaches it only once the user trusted that very content.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hal_common.egress import GATEWAY, PROXY_PORT
from hal_common.naming import session_name
from hal_testing.host import HostParent

pytestmark = pytest.mark.e2e

MARK = f"hal-project-attack-{uuid.uuid4().hex[:8]}"


class Marked(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = MARK.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_a: Any) -> None:
        pass


class Quiet(ThreadingHTTPServer):
    def server_bind(self) -> None:  # no getfqdn: no reverse lookup
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "test", int(self.server_address[1])


def own_address() -> str:
    def sh(*argv: str) -> str:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout

    dev = json.loads(sh("ip", "-j", "-4", "route", "show", "default"))[0]["dev"]
    return str(
        json.loads(sh("ip", "-j", "-4", "addr", "show", "dev", dev))[0]["addr_info"][0]["local"]
    )


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    http = Quiet(("0.0.0.0", 0), Marked)  # noqa: S104 - the test's own
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield f"{own_address()}:{http.server_address[1]}"
    finally:
        http.shutdown()


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    return host_parents("projatk", worker='image = "hal9000/worker:standard"\nmemory = "1g"\n')


def fetch(p: HostParent, proj: Path, where: str) -> str:
    """curl through the worker's proxy: the body and the proxy's answer to CONNECT-less GET."""
    proxy = f"http://{GATEWAY}:{PROXY_PORT}"
    script = f"curl -sS -m 5 -x {proxy} -w ' HTTP=%{{http_code}}' http://{where}/ 2>&1; true"
    return p.in_worker(proj, "sh", "-c", script, check=False)


def agent_writes(p: HostParent, proj: Path, text: str) -> None:
    """The agent (the worker's user) writes its project's file."""
    p.in_worker(proj, "sh", "-c", f"printf '%s' '{text}' > {proj}/.hal9000.toml")


def memory(p: HostParent, proj: Path) -> int:
    name = f"hal9000-w-{session_name(str(proj))}"
    return int(p.inner("inspect", "-f", "{{.HostConfig.Memory}}", name))


def test_an_agent_cannot_widen_its_next_worker(env: HostParent, target: str) -> None:
    proj = env.project("victim")
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    before = fetch(env, proj, target)
    assert MARK not in before and "HTTP=403" in before, before
    # the agent gives itself the target and 4g, then gets its worker made anew
    agent_writes(env, proj, f'[network]\nallow = ["{target}"]\n[worker]\nmemory = "4g"\n')
    assert MARK not in fetch(env, proj, target)  # a running worker keeps what it was made with
    name = session_name(str(proj))
    code, out = env.run(["hal-agent", "stop", name])
    assert code == 0, out
    res = env.claudy("-d", str(proj))
    assert res.returncode == 2, res.stderr + res.stdout
    assert "is not trusted" in res.stderr and "review .hal9000.toml" in res.stderr
    assert f"adds '{target}'" in res.stderr and "[worker].memory '4g'" in res.stderr
    code, out = env.run(["hal-agent", "spawn", "--no-attach", str(proj)])  # the parent's way
    assert code == 2 and "is not trusted" in out, out
    assert memory(env, proj) == 1 << 30  # the stopped worker was left as it was
    # the user reviews and trusts it: now it applies
    assert env.claudy("trust", str(proj)).returncode == 0
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    assert memory(env, proj) == 4 << 30
    assert MARK in fetch(env, proj, target)
    # the agent changes the trusted file: its next worker is refused again
    agent_writes(env, proj, f'[network]\nallow = ["{target}"]\n[worker]\nmemory = "8g"\n')
    code, out = env.run(["hal-agent", "stop", name])
    assert code == 0, out
    res = env.claudy("-d", str(proj))
    assert res.returncode == 2 and "changed since you trusted it" in res.stderr, res.stderr


def test_a_link_or_a_fifo_is_refused_not_followed(env: HostParent) -> None:
    proj = env.project("linked")
    path = proj / ".hal9000.toml"
    for kind in ("link", "fifo"):
        path.unlink(missing_ok=True)
        if kind == "link":
            os.symlink("/etc/passwd", path)
        else:
            os.mkfifo(path)
        code, out = env.run(["hal-agent", "spawn", "--no-attach", str(proj)])
        assert code == 2 and "not read" in out, out  # refused at once, never blocked
        res = env.claudy("-d", str(proj))  # claudy's own look at it does not block either
        assert res.returncode == 2 and "not read" in res.stderr, res.stderr
    path.unlink()
