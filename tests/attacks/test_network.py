"""Attacks on the egress boundary from inside real workers (the real Claude Code image) of a
real parent (Docker-in-Docker, driven through claudy), and the boundary's positive side.

Every target is on this machine and made by the test: an HTTP server on this machine's own
address and on the parent's docker bridge gateway; a "LAN" host in a network namespace of
the test's own (a veth pair, a private address); a stand-in metadata server at
169.254.169.254 on a dummy interface inside the parent's network namespace, behind a
blackhole route so that nothing leaves while it is missing; a listener of the parent's own on
all its addresses. Each is first shown to answer from the parent, so that a broken boundary
would be seen; then each attack from a worker must fail: directly, through the proxy as
CONNECT and as plain HTTP, by IP and by a name the parent's /etc/hosts resolves.
"""

from __future__ import annotations

import json
import secrets
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from libtmux.test.retry import retry_until

from hal_common.egress import GATEWAY, PROXY_PORT
from hal_common.naming import session_name
from hal_testing.engine import GID, UID
from hal_testing.host import HostParent
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

PROXY = f"http://{GATEWAY}:{PROXY_PORT}"
MARK = f"hal-attack-{uuid.uuid4().hex[:10]}"
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
host, port, mark = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = mark.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(ThreadingHTTPServer):
    def server_bind(self):  # no getfqdn: no reverse lookup, no DNS query leaves
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = host, port
S((host, port), H).serve_forever()
"""


# -- this machine's targets -----------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.hits.append(self.client_address[0])
        body = f"{MARK}-host".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_a: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def server_bind(self) -> None:  # no getfqdn: no reverse lookup, no DNS query leaves
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "test", int(self.server_address[1])


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


def own_address() -> str:
    """This machine's own address: the one on its default route's interface."""
    routes = json.loads(sh("ip", "-j", "-4", "route", "show", "default"))
    dev = routes[0]["dev"]
    addrs = json.loads(sh("ip", "-j", "-4", "addr", "show", "dev", dev))
    return str(addrs[0]["addr_info"][0]["local"])


def free_port() -> int:
    return 20000 + secrets.randbelow(10000)


class Targets:
    """What the attacks aim at, each checked to answer from the parent first."""

    def __init__(self, parent: HostParent) -> None:
        self.parent = parent
        self.tag = uuid.uuid4().hex[:5]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.undo: list[list[str]] = []
        self.http: ThreadingHTTPServer | None = None

    # the host: one server on all of this machine's addresses
    def start_host(self) -> None:
        self.http = QuietServer(("0.0.0.0", 0), Recorder)  # noqa: S104 - the test's own
        self.host_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.host_ip = own_address()
        attrs = self.parent.parent.attrs["NetworkSettings"]
        gateways = [n["Gateway"] for n in attrs["Networks"].values() if n.get("Gateway")]
        self.bridge_gw = gateways[0]

    # a LAN host: a namespace of ours, a veth pair, a private address, a server in it
    def start_lan(self) -> None:
        n = 10 + secrets.randbelow(240)
        self.ns = f"hxlan{self.tag}"
        out, inside = f"hxv{self.tag}", f"hxp{self.tag}"
        self.lan_ip, self.lan_port = f"10.66.{n}.2", free_port()
        sh("ip", "netns", "add", self.ns)
        self.undo.append(["ip", "netns", "del", self.ns])
        sh("ip", "link", "add", out, "type", "veth", "peer", "name", inside)
        self.undo.append(["ip", "link", "del", out])
        sh("ip", "link", "set", inside, "netns", self.ns)
        sh("ip", "addr", "add", f"10.66.{n}.1/24", "dev", out)
        sh("ip", "link", "set", out, "up")
        for cmd in (
            ["ip", "addr", "add", f"{self.lan_ip}/24", "dev", inside],
            ["ip", "link", "set", inside, "up"],
            ["ip", "link", "set", "lo", "up"],
            ["ip", "route", "add", "default", "via", f"10.66.{n}.1"],
        ):
            sh("ip", "netns", "exec", self.ns, *cmd)
        self.spawn(["ip", "netns", "exec", self.ns], self.lan_ip, self.lan_port, f"{MARK}-lan")

    # the parent's namespace: a stand-in metadata server, and a listener on all addresses
    def start_in_parent(self) -> None:
        pid = str(self.parent.parent.attrs["State"]["Pid"])
        enter = ["nsenter", "-t", pid, "-n"]
        # first a blackhole: with the stand-in gone, nothing for it leaves the parent
        sh(*enter, "ip", "route", "add", "blackhole", "169.254.169.254/32")
        # a dummy interface: a bridge without ports (this kernel has no `dummy` driver)
        sh(*enter, "ip", "link", "add", "hxmeta0", "type", "bridge")
        self.undo.append([*enter, "ip", "link", "del", "hxmeta0"])
        sh(*enter, "ip", "addr", "add", "169.254.169.254/32", "dev", "hxmeta0")
        sh(*enter, "ip", "link", "set", "hxmeta0", "up")
        self.spawn(enter, "169.254.169.254", 80, f"{MARK}-metadata")
        self.parent_port = free_port()
        self.spawn(enter, "0.0.0.0", self.parent_port, f"{MARK}-parent")  # noqa: S104
        self.parent_ip = self.parent.parent.attrs["NetworkSettings"]["Networks"]
        self.parent_ip = next(iter(self.parent_ip.values()))["IPAddress"]
        hosts = (
            f"{self.lan_ip} lan.hal-test\n{self.host_ip} host.hal-test\n"
            f"169.254.169.254 metadata.hal-test\n"
        )
        self.parent.sh(f"printf '{hosts}' >> /etc/hosts")

    def spawn(self, prefix: list[str], host: str, port: int, mark: str) -> None:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-c", SERVER, host, str(port), mark],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)

    def from_parent(self, url: str) -> str:
        """What `url` answers to a request from the parent itself (no proxy)."""
        script = (
            "import sys, urllib.request as u\n"
            "o = u.build_opener(u.ProxyHandler({}))\n"
            "print(o.open(sys.argv[1], timeout=3).read().decode())"
        )
        for _ in range(30):  # the server may take a moment to listen
            code, out = self.parent.run(["python3", "-c", script, url])
            if code == 0:
                return out
            time.sleep(0.2)
        return out

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(10)
        for argv in reversed(self.undo):
            subprocess.run(argv, capture_output=True, check=False, timeout=30)
        if self.http is not None:
            self.http.shutdown()


@pytest.fixture(scope="module")
def net(host_parents: Callable[..., HostParent]) -> Iterator[tuple[HostParent, Targets]]:
    p = host_parents(
        "net",
        worker='image = "hal9000/worker:standard"\nmemory = "1g"\n',
        env={"SUDO_UID": str(UID), "SUDO_GID": str(GID)},
    )
    for name in ("a", "b"):
        res = p.claudy("-d", str(p.project(name)))
        assert res.returncode == 0, res.stderr + res.stdout
    t = Targets(p)
    try:
        t.start_host()
        t.start_lan()
        t.start_in_parent()
        # each target answers from the parent: a broken boundary would be seen
        assert f"{MARK}-host" in t.from_parent(f"http://{t.host_ip}:{t.host_port}/")
        assert f"{MARK}-host" in t.from_parent(f"http://{t.bridge_gw}:{t.host_port}/")
        assert f"{MARK}-lan" in t.from_parent(f"http://{t.lan_ip}:{t.lan_port}/")
        assert f"{MARK}-metadata" in t.from_parent("http://169.254.169.254/")
        assert f"{MARK}-metadata" in t.from_parent("http://metadata.hal-test/")
        assert f"{MARK}-parent" in t.from_parent(f"http://{t.parent_ip}:{t.parent_port}/")
        assert f"{MARK}-parent" in t.from_parent(f"http://{GATEWAY}:{t.parent_port}/")
        Recorder.hits.clear()
        yield p, t
    finally:
        t.close()


def in_worker(p: HostParent, name: str, script: str) -> str:
    return p.in_worker(p.root / name, "sh", "-c", script, check=False)


def curl(p: HostParent, name: str, url: str, via: str = "direct") -> str:
    """curl in worker `name`: its output and `HTTP=<code> CONNECT=<code> RC=<exit>`."""
    how = {
        "direct": "--noproxy '*'",
        "http": f"-x {PROXY} --noproxy ''",
        "connect": f"-p -x {PROXY} --noproxy ''",
    }[via]
    fmt = "\\nHTTP=%{http_code} CONNECT=%{http_connect}"
    return in_worker(p, name, f"curl -sS -m 4 {how} -w '{fmt}' '{url}' 2>&1; echo \" RC=$?\"")


def refused(out: str, via: str) -> bool:
    """No marker came back, and the proxy said no (403) when it was asked."""
    if MARK in out:
        return False
    if via == "http":
        return "HTTP=403" in out
    if via == "connect":
        return "CONNECT=403" in out
    return "RC=0" not in out


VIAS = ("direct", "http", "connect")


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("target", ["own address", "bridge gateway", "by name"])
def test_the_host_is_unreachable(net: tuple[HostParent, Targets], target: str, via: str) -> None:
    p, t = net
    host = {"own address": t.host_ip, "bridge gateway": t.bridge_gw, "by name": "host.hal-test"}
    out = curl(p, "a", f"http://{host[target]}:{t.host_port}/", via)
    assert refused(out, via), out
    assert not Recorder.hits


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("target", ["ip", "name"])
def test_the_lan_is_unreachable(net: tuple[HostParent, Targets], target: str, via: str) -> None:
    p, t = net
    host = t.lan_ip if target == "ip" else "lan.hal-test"
    out = curl(p, "a", f"http://{host}:{t.lan_port}/", via)
    assert refused(out, via), out


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("target", ["169.254.169.254", "metadata.hal-test"])
def test_the_metadata_address_is_unreachable(
    net: tuple[HostParent, Targets], target: str, via: str
) -> None:
    p, t = net
    assert f"{MARK}-metadata" in t.from_parent("http://169.254.169.254/")  # the stand-in is up
    out = curl(p, "a", f"http://{target}/latest/meta-data/", via)
    assert refused(out, via), out


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("port", [8811, 8812, 8000])
def test_the_parents_loopback_services_are_unreachable(
    net: tuple[HostParent, Targets], port: int, via: str
) -> None:
    p, _ = net
    out = curl(p, "a", f"http://127.0.0.1:{port}/mcp", via)
    assert refused(out, via), out


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("where", ["gateway", "parent address"])
def test_the_parents_other_ports_and_addresses_are_unreachable(
    net: tuple[HostParent, Targets], where: str, via: str
) -> None:
    p, t = net
    ip = GATEWAY if where == "gateway" else t.parent_ip
    out = curl(p, "a", f"http://{ip}:{t.parent_port}/", via)
    assert refused(out, via), out


@pytest.mark.parametrize("via", VIAS)
def test_another_worker_is_unreachable(net: tuple[HostParent, Targets], via: str) -> None:
    p, t = net
    port = free_port()
    serve = f"{MARK}-worker"
    in_worker(
        p,
        "b",
        f"timeout 60 python3 -c '{SERVER}' 0.0.0.0 {port} {serve} >/dev/null 2>&1 &",
    )
    b_ip = in_worker(p, "b", "hostname -i").split()[0]
    # the parent reaches it: the listener is there
    assert retry_until(lambda: serve in t.from_parent(f"http://{b_ip}:{port}/"), 10, raises=False)
    out = curl(p, "a", f"http://{b_ip}:{port}/", via)
    assert refused(out, via), out


def test_no_outside_name_resolves(net: tuple[HostParent, Targets]) -> None:
    p, _ = net
    t0 = time.monotonic()
    script = (
        "for n in example.com pypi.org lan.hal-test host.hal-test; do "
        "getent hosts $n && echo RESOLVED $n; done; "
        "python3 -c 'import socket; socket.getaddrinfo(\"github.com\", 443)' 2>&1 | tail -1"
    )
    out = in_worker(p, "a", script)
    assert "RESOLVED" not in out and "gaierror" in out, out
    assert time.monotonic() - t0 < 30, "a failed lookup should fail fast (one try, 1 s)"


def test_a_service_wants_the_token(net: tuple[HostParent, Targets]) -> None:
    p, _ = net
    token = p.sh("cat /data/services/mcp.token")
    post = (
        "curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST "
        "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' "
        '--data \'{"jsonrpc":"2.0","id":1,"method":"ping"}\' '
    )
    for port in (8811, 8812, 8000):
        url = f"http://{GATEWAY}:{port}/mcp"
        none = in_worker(p, "a", f"{post} {url}")
        wrong = in_worker(p, "a", f"{post} -H 'Authorization: Bearer {token[:-2]}xx' {url}")
        other = in_worker(p, "a", f"{post} -H 'X-Token: {token}' {url}")
        right = in_worker(p, "a", f"{post} -H 'Authorization: Bearer {token}' {url}")
        for out in (none, wrong, other):
            assert out.strip() in ("401", "403"), (port, out)
        assert right.strip() not in ("000", "401", "403"), (port, right)


def test_a_worker_cannot_bind_a_services_address_or_stand_in_for_it(
    net: tuple[HostParent, Targets],
) -> None:
    p, _ = net
    bind = "import socket; s = socket.socket(); s.bind(('10.213.213.1', 8812)); print('BOUND')"
    out = in_worker(p, "a", f'python3 -c "{bind}" 2>&1')
    assert "BOUND" not in out and "Cannot assign requested address" in out, out
    # a fake on the service's port in worker a's own namespace: nobody else ever reaches it
    fake = f"{MARK}-fake"
    in_worker(p, "a", f"timeout 60 python3 -c '{SERVER}' 0.0.0.0 8812 {fake} >/dev/null 2>&1 &")
    token = p.sh("cat /data/services/mcp.token")
    for name in ("a", "b"):
        got = in_worker(
            p, name, f"curl -sS -m 5 -H 'Authorization: Bearer {token}' http://{GATEWAY}:8812/mcp"
        )
        assert fake not in got, got
    got = in_worker(p, "b", "curl -sS -m 5 --noproxy '*' http://127.0.0.1:8812/ 2>&1; echo RC=$?")
    assert fake not in got, got


# -- the positive side ----------------------------------------------------------------------


def egress_rows(p: HostParent) -> list[dict[str, Any]]:
    code, out = p.run(["hal-agent", "egress", "--json", "-n", "200"])
    assert code == 0, out
    rows: list[dict[str, Any]] = json.loads(out)
    validate("egress", rows)
    return rows


def test_an_allowed_host_goes_through_and_a_denied_one_is_logged_then_allowed_on_save(
    net: tuple[HostParent, Targets],
) -> None:
    p, t = net
    url = f"http://lan.hal-test:{t.lan_port}/"
    before = curl(p, "a", url, "connect")
    assert refused(before, "connect"), before
    logged = [json.loads(ln) for ln in p.sh("cat /data/logs/egress.jsonl").splitlines()]
    denied = [r for r in logged if r["host"] == "lan.hal-test" and r["verdict"] == "deny"]
    assert denied and denied[-1]["worker"] == session_name(str(p.root / "a")), denied
    # allowed: the name, and its (private) address, on that port
    text = p.config_file.read_text()
    allow = f'\n[network]\nallow = ["lan.hal-test:{t.lan_port}", "{t.lan_ip}:{t.lan_port}"]\n'
    saved = time.monotonic()
    p.config_file.write_text(text + allow)
    try:
        through = ""
        while time.monotonic() - saved < 10:
            through = curl(p, "a", url, "connect")
            if f"{MARK}-lan" in through:
                break
        took = time.monotonic() - saved
        assert f"{MARK}-lan" in through, through
        assert took <= 2.5, f"allowed {took:.2f}s after the save"
        plain = curl(p, "a", url, "http")
        assert f"{MARK}-lan" in plain and "HTTP=200" in plain, plain
        # still refused: the same host on another port, and directly
        assert refused(curl(p, "a", f"http://lan.hal-test:{t.lan_port + 1}/", "http"), "http")
        assert refused(curl(p, "a", f"http://{t.lan_ip}:{t.lan_port}/", "direct"), "direct")
    finally:
        p.config_file.write_text(text)
    assert retry_until(lambda: refused(curl(p, "a", url, "connect"), "connect"), 10, raises=False)
    # `hal-agent egress` lists the denial, with its worker
    rows = [r for r in egress_rows(p) if r["host"] == "lan.hal-test" and r["verdict"] == "deny"]
    assert rows and rows[-1]["worker"] == session_name(str(p.root / "a")), rows


def test_claude_lists_the_shared_mcp_servers_connected_through_the_gates(
    net: tuple[HostParent, Targets],
) -> None:
    p, _ = net

    def listed() -> str:
        return p.in_worker(p.root / "a", "claude", "mcp", "list", check=False)

    def connected() -> bool:
        out = listed()
        return all(
            any(f"{GATEWAY}:{port}/mcp" in ln and "Connected" in ln for ln in out.splitlines())
            for port in (8811, 8812)
        )

    assert retry_until(connected, 120, interval=3, raises=False), listed()


def test_the_firewall_and_proxy_are_in_place(net: tuple[HostParent, Targets]) -> None:
    p, _ = net
    rules = p.sh("iptables -S HAL-WORKERS")
    assert f"-d {GATEWAY}/32 -p tcp -m tcp --dport {PROXY_PORT} -j ACCEPT" in rules, rules
    assert "--dport 8811 -j ACCEPT" in rules and "REJECT" in rules, rules
    assert "-A INPUT -i hal-workers0 -j HAL-WORKERS" in p.sh("iptables -S INPUT")


def counters(p: HostParent, chain: str) -> dict[str, int]:
    """Packets per rule target of `chain` in the parent (`-j TARGET` → packets)."""
    out: dict[str, int] = {}
    for line in p.sh(f"iptables -w -L {chain} -v -n -x").splitlines()[2:]:
        cols = line.split()
        if len(cols) > 2:
            out[cols[2]] = out.get(cols[2], 0) + int(cols[0])
    return out


def test_what_stops_a_direct_attempt(net: tuple[HostParent, Targets]) -> None:
    """A worker has a default route to the gateway (Docker 20.10 gives one even on an internal
    network): to the parent's own addresses its packets meet the INPUT chain (rejected), to
    anything beyond they would be forwarded, and the FORWARD chain drops them."""
    p, t = net
    before_in, before_fwd = counters(p, "HAL-WORKERS"), counters(p, "HAL-WORKERS-FWD")
    assert refused(curl(p, "a", f"http://{t.parent_ip}:{t.parent_port}/"), "direct")
    assert refused(curl(p, "a", f"http://{t.lan_ip}:{t.lan_port}/"), "direct")
    after_in, after_fwd = counters(p, "HAL-WORKERS"), counters(p, "HAL-WORKERS-FWD")
    assert after_in.get("REJECT", 0) > before_in.get("REJECT", 0), (before_in, after_in)
    assert after_fwd.get("DROP", 0) > before_fwd.get("DROP", 0), (before_fwd, after_fwd)
