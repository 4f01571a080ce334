"""The workers' only way out: a small asyncio forward proxy, and the service gates.

Runs in its own thread (its own event loop) in the parent's network namespace, listening on
`GATEWAY:PROXY_PORT` of the workers' internal network:

- `CONNECT host:port` opens a tunnel; an absolute-URI request (`GET http://host/path`) is
  rewritten to origin form (with `Connection: close`) and sent on; then both directions are
  piped as the bytes come, so streamed responses stream.
- The request head is read with a size and a time limit (431, 408). A name is resolved in a
  thread pool with a timeout, and only when the policy could allow it
  (`Policy.may_resolve`), so a worker cannot use the parent's DNS as a side channel. The
  policy decides on each resolved address, and the proxy connects to exactly that address:
  a name cannot smuggle in a private one.
- Denied: `403` with a one-line reason; a name that does not resolve, or a refused
  connection: `502`; a request it does not understand: `400`.
- Every request, allowed or denied, is one JSON line in the egress log (`EgressRow`), with
  the worker it came from (`who(client_ip)`); the last denial is kept in memory.
- Gates (`set_gates`): listeners on the proxy's host, one per service port, that want
  `Authorization: Bearer <token>` on the first request head (compared in constant time;
  401 otherwise) and then pipe the connection, head included, to `127.0.0.1:<upstream>`.
- Bounded: at most `max_connections` clients at once, and `per_client` from one address, so
  one worker cannot starve the others (503 past either); tunnels idle in both directions for
  `idle_timeout` (gates: `gate_idle_timeout`, for MCP's long-lived event streams) are closed.

Why not tinyproxy or squid (Debian has both). The proxy must (a) decide on the address it
actually connects to, so that a name cannot lead a worker to 127.0.0.1, the LAN or
169.254.169.254; (b) take CIDR entries and a port per entry; (c) say in one log line which
worker asked; (d) take a new list within 2 s without dropping open tunnels; and also guard
the service ports with a token. tinyproxy 1.11's `Filter` matches the *name* in the request
(regex or fnmatch), never the address it resolves to; its `Allow`/`Deny` are about clients;
`ConnectPort` is one global list; its log spreads a request over several lines keyed by a
file descriptor: (a), (b) and (c) fail, though its SIGUSR1 reload would do for (d). squid
can do (a) and (b) with `dst` and `port` ACLs generated into its config, but attributing a
request to a worker takes an external ACL helper or a log post-processor, `squid -k
reconfigure` restarts its helpers, the token gates need an accelerator setup of their own,
and it adds 8 MB and a dozen libraries (Kerberos, LDAP, GnuTLS…) to the parent image, whose
size is a benchmark target. Written here instead: this module, `tcp_relay` and
`egress_log`, about 800 lines of stdlib asyncio, tested against real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from hal_common.egress import (
    GATEWAY,
    PROXY_PORT,
    Address,
    Policy,
    Verdict,
    literal,
    normalise_host,
)
from hal_common.protocol import EgressRow
from parent_agent.adapters.egress_log import EgressLog
from parent_agent.adapters.tcp_relay import Tunnel

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade")
)


@dataclass(frozen=True)
class ProxyLimits:
    """Bounds on what a worker can make the proxy hold."""

    max_connections: int = 512  # open client connections, proxy and gates together
    per_client: int = 128  # of those, from one client address (one worker)
    head_bytes: int = 16 << 10  # a request head larger than this: 431
    head_timeout: float = 10.0  # seconds for the whole head to arrive: else 408
    resolve_timeout: float = 5.0
    connect_timeout: float = 10.0
    idle_timeout: float = 600.0  # a tunnel with no byte either way for this long is closed
    gate_idle_timeout: float = 3600.0


def _nobody(_ip: str) -> str | None:
    return None


class _Refused(Exception):
    """Answer the client with `status` and `reason`, and log `verdict` (when given)."""

    def __init__(
        self, status: int, reason: str, verdict: Verdict | None = None, addr: Address | None = None
    ) -> None:
        super().__init__(reason)
        self.status, self.reason, self.verdict, self.addr = status, reason, verdict, addr


@dataclass(frozen=True)
class _Head:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _response(status: int, body: str, extra: str = "") -> bytes:
    data = body.encode() + b"\n"
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n{extra}Connection: close\r\n\r\n"
    ).encode() + data


def _parse_head(raw: bytes) -> _Head:
    try:
        text = raw.decode("latin-1")
        request, *lines = text[:-4].split("\r\n")
        method, target, version = request.split(" ")
    except ValueError:
        raise _Refused(400, "not an HTTP request") from None
    if not method.isalpha() or not version.startswith("HTTP/1.") or not target.isprintable():
        raise _Refused(400, "not an HTTP/1 request")
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or not name.isprintable():
            raise _Refused(400, "a malformed header line")
        headers.append((name, value.strip()))
    return _Head(method.upper(), target, version, tuple(headers), raw)


_NAME = re.compile(r"[a-z0-9_.-]{1,253}")


def _checked(host: str) -> str:
    """A host that is a name (letters, digits, `-`, `_`, `.`) or an IP literal, else 400."""
    host = normalise_host(host)
    if literal(host) is None and not _NAME.fullmatch(host):
        raise _Refused(400, "not a host name or address")
    return host


def _host_port(authority: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port)."""
    if authority.startswith("["):
        host, sep, port = authority[1:].partition("]:")
    else:
        host, sep, port = authority.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _Refused(400, f"{authority!r} is not host:port")
    return _checked(host), int(port)


def _origin_request(head: _Head) -> tuple[str, int, bytes]:
    """An absolute-URI request → (host, port, the head in origin form for the server)."""
    url = urlsplit(head.target)
    if url.scheme.lower() != "http" or not url.hostname:
        raise _Refused(400, "a proxy request names an http:// URL (https goes by CONNECT)")
    try:
        port = url.port or 80
    except ValueError:
        raise _Refused(400, "a bad port in the URL") from None
    host = _checked(url.hostname)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    # the Host the server sees is the one decided on (no fronting another name)
    lines = [f"{head.method} {path} {head.version}", f"Host: {url.netloc.rpartition('@')[2]}"]
    lines += [f"{k}: {v}" for k, v in head.headers if k.lower() not in HOP_BY_HOP | {"host"}]
    lines.append("Connection: close")  # one request per connection: the pipe carries it
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class EgressProxy:
    """The forward proxy and the gates, on one event loop in one thread.

    `who` maps a client IP to its worker session (None: unknown); it is called on the
    proxy's thread, so it must be cheap and thread-safe (a dict lookup). `resolve` replaces
    name resolution (tests); it is called in a worker thread.
    """

    def __init__(
        self,
        policy: Policy,
        log_path: Path,
        *,
        listen: tuple[str, int] = (GATEWAY, PROXY_PORT),
        who: Callable[[str], str | None] = _nobody,
        limits: ProxyLimits = ProxyLimits(),
        resolve: Callable[[str, int], list[Address]] | None = None,
    ) -> None:
        self._policy = policy
        self._by_worker: Mapping[str, Policy] = {}  # a project's own entries (trusted)
        self._log = EgressLog(log_path)
        self._listen = listen
        self._who = who
        self.limits = limits
        self._resolve = resolve or _getaddrinfo
        self._token = b""
        self._last_denial: EgressRow | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._gates: dict[int, tuple[int, asyncio.Server]] = {}
        self._conns: set[asyncio.Task[None]] = set()
        self._per_client: dict[str, int] = {}
        self._dns: ThreadPoolExecutor | None = None

    # -- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the proxy's listener and serve in a new thread; OSError when it cannot bind."""
        if self._thread is not None:
            return
        self._dns = ThreadPoolExecutor(max_workers=8, thread_name_prefix="egress-dns")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="egress-proxy", daemon=True)
        self._thread.start()
        try:
            self._server = cast(asyncio.Server, self._call(self._serve(self._listen, self._client)))
        except BaseException:
            self.stop()
            raise
        log.info("egress proxy on %s:%s", *self.address)

    def stop(self) -> None:
        """Close every listener and connection, and join the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._close_all())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._server = None
        if self._dns is not None:
            self._dns.shutdown(wait=False, cancel_futures=True)
        self._log.close()

    def _call(self, coro: Awaitable[object]) -> object:
        assert self._loop is not None  # noqa: S101 - started
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)  # type: ignore[arg-type]

    async def _serve(
        self,
        at: tuple[str, int],
        handler: Callable[
            [asyncio.StreamReader, asyncio.StreamWriter], Coroutine[object, object, None]
        ],
    ) -> asyncio.Server:
        return await asyncio.start_server(
            lambda r, w: self._track(handler(r, w), w),
            at[0],
            at[1],
            limit=self.limits.head_bytes,
            reuse_address=True,
            backlog=256,
        )

    async def _track(
        self, handling: Coroutine[object, object, None], writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - inside a task
        client = str(writer.get_extra_info("peername")[0])
        if (
            len(self._conns) >= self.limits.max_connections
            or self._per_client.get(client, 0) >= self.limits.per_client
        ):
            with contextlib.suppress(OSError):
                writer.write(_response(503, "hal-9000 egress: too many connections"))
            writer.close()
            handling.close()  # never run
            return
        self._conns.add(task)
        self._per_client[client] = self._per_client.get(client, 0) + 1
        try:
            await handling
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the proxy stops
        except Exception:  # one connection's bug must not end the proxy
            log.exception("egress connection")
        finally:
            self._conns.discard(task)
            left = self._per_client.pop(client) - 1
            if left:
                self._per_client[client] = left
            writer.close()

    async def _close_all(self) -> None:
        servers = [s for s in (self._server, *(g for _, g in self._gates.values())) if s]
        for s in servers:
            s.close()
        self._gates.clear()
        for t in list(self._conns):
            t.cancel()
        if self._conns:
            await asyncio.wait(list(self._conns), timeout=5)

    # -- the interface ----------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """Where the proxy listens (the port bound, when 0 was asked for)."""
        if self._server is None:
            return self._listen
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def set_policy(self, policy: Policy) -> None:
        """Decide every request from now on with `policy` (open tunnels stay open)."""
        self._policy = policy  # one reference, read once per request

    def set_worker_policies(self, policies: Mapping[str, Policy]) -> None:
        """Workers whose project adds entries (`.hal9000.toml`, trusted): session → its
        policy, the user's with those entries; every other worker gets the user's."""
        self._by_worker = dict(policies)

    def _policy_for(self, client: str) -> Policy:
        policies = self._by_worker  # one reference, read once per request
        if not policies:
            return self._policy
        worker = self._worker(client)
        return policies.get(worker, self._policy) if worker else self._policy

    def set_gates(self, gates: Mapping[int, int], token: str) -> list[str]:
        """Listen on `(proxy host, listen port)` for each `{listen port: upstream port}` and
        close the gates not named; the token applies to every gate from now on. Returns the
        problems (a port that could not be bound), one sentence each; the others open."""
        self._token = token.encode()
        if self._loop is None:
            raise RuntimeError("the egress proxy is not running: start() it first")
        problems = self._call(self._set_gates(dict(gates)))
        assert isinstance(problems, list)  # noqa: S101 - what _set_gates returns
        return problems

    async def _set_gates(self, gates: dict[int, int]) -> list[str]:
        problems: list[str] = []
        for port, (upstream, server) in list(self._gates.items()):
            if gates.get(port) != upstream:
                server.close()
                del self._gates[port]
        host = self._listen[0]
        for port, upstream in gates.items():
            if port in self._gates:
                continue
            try:
                server = await self._serve((host, port), self._gate(port, upstream))
            except OSError as e:
                problems.append(f"the gate on {host}:{port} cannot listen: {e.strerror or e}")
                continue
            self._gates[port] = (upstream, server)
        return problems

    @property
    def gate_ports(self) -> frozenset[int]:
        """The ports whose gates listen now."""
        return frozenset(self._gates)

    @property
    def last_denial(self) -> EgressRow | None:
        """The newest denied request (proxy or gate) since the start; None: none yet."""
        return self._last_denial

    @property
    def connections(self) -> int:
        """Client connections open now (proxy and gates)."""
        return len(self._conns)

    # -- one request ------------------------------------------------------------------------

    def _record(self, row: EgressRow, status: int = 0) -> None:
        """Log `row` (`status`: the answer when refused). A refusal by the policy or a gate
        (403, 401) is a denial, and the last one is kept; a name that does not resolve or a
        bad request is an `error`: no rule denied it."""
        if row.verdict == "deny" and status not in (0, 401, 403):
            row = replace(row, verdict="error")  # refused by no rule: it failed
        if row.verdict == "deny":
            self._last_denial = row
        self._log.append(row)

    def _worker(self, client: str) -> str | None:
        try:
            return self._who(client)
        except Exception:  # attribution is best effort; the request goes on
            log.exception("egress: who(%s)", client)
            return None

    async def _head(self, reader: asyncio.StreamReader) -> _Head:
        try:
            async with asyncio.timeout(self.limits.head_timeout):
                raw = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise _Refused(408, "the request head did not arrive in time") from None
        except asyncio.LimitOverrunError:
            raise _Refused(431, "the request head is too large") from None
        return _parse_head(raw)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = str(writer.get_extra_info("peername")[0])
        method, host, port = "-", "", 0
        tunnel = Tunnel(self.limits.idle_timeout)
        try:
            head = await self._head(reader)
            method = head.method
            if method == "CONNECT":
                host, port = _host_port(head.target)
                send = b""
            else:
                host, port, send = _origin_request(head)
            addr, verdict = await self._open(host, port, tunnel, self._policy_for(client))
        except _Refused as r:
            if method != "-" or r.verdict is not None:  # a request, not noise: log it
                v = r.verdict or Verdict(False, r.reason)
                self._record(self._row(client, host, port, r.addr, v, method), r.status)
            msg = f"hal-9000 egress: {host}:{port} " if host else "hal-9000 egress: "
            why = r.verdict.rule if r.verdict else r.reason
            hint = "; allow it in [network] allow" if r.status == 403 else ""
            writer.write(_response(r.status, f"{msg}{why}{hint}"))
            await writer.drain()
            return
        self._record(self._row(client, host, port, addr, verdict, method))
        try:
            if not send:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await tunnel.run(writer, reader, send)
        finally:
            tunnel.close()

    def _row(
        self, client: str, host: str, port: int, addr: Address | None, v: Verdict, method: str
    ) -> EgressRow:
        return EgressRow(
            t=round(time.time(), 3),
            worker=self._worker(client),
            client=client,
            host=host,
            port=port,
            addr=str(addr) if addr is not None else None,
            verdict=v.verdict,
            rule=v.rule,
            method=method,
        )

    async def _addresses(self, host: str, port: int) -> list[Address]:
        if (one := literal(host)) is not None:
            return [one]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.limits.resolve_timeout):
                found = await loop.run_in_executor(self._dns, self._resolve, host, port)
        except (OSError, TimeoutError, UnicodeError) as e:
            reason = "timed out" if isinstance(e, TimeoutError) else "no such name"
            raise _Refused(
                502, f"name not resolved ({reason})", Verdict(False, "name not resolved")
            ) from None
        return list(dict.fromkeys(found))  # in order, once each

    async def _open(
        self, host: str, port: int, tunnel: Tunnel, policy: Policy
    ) -> tuple[Address, Verdict]:
        """Decide, resolve, decide on each address, connect `tunnel` to the first allowed
        one: that address and the verdict that allowed it."""
        if (early := policy.may_resolve(host, port)) is not None:
            raise _Refused(403, early.rule, early)
        denied: tuple[Address, Verdict] | None = None
        failed: tuple[Address, str] | None = None
        for addr in await self._addresses(host, port):
            verdict = policy.decide(host, port, addr)
            if not verdict.allowed:
                denied = denied or (addr, verdict)
                continue
            try:
                async with asyncio.timeout(self.limits.connect_timeout):
                    await tunnel.connect(str(addr), port)
            except (OSError, TimeoutError) as e:
                failed = failed or (
                    addr,
                    "timed out" if isinstance(e, TimeoutError) else e.strerror or str(e),
                )
                continue
            return addr, verdict
        if failed is not None:
            raise _Refused(
                502,
                f"cannot connect to {failed[0]}: {failed[1]}",
                Verdict(True, f"connect failed: {failed[1]}"),
                failed[0],
            )
        if denied is not None:
            addr, verdict = denied
            raise _Refused(403, verdict.rule, verdict, addr)
        raise _Refused(502, "name not resolved", Verdict(False, "name not resolved"))

    # -- the gates --------------------------------------------------------------------------

    def _gate(
        self, port: int, upstream: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[object, object, None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            client = str(writer.get_extra_info("peername")[0])
            host = str(writer.get_extra_info("sockname")[0])
            method = "-"
            tunnel = Tunnel(self.limits.gate_idle_timeout)
            try:
                head = await self._head(reader)
                method = head.method
                given = (head.header("authorization") or "").encode("latin-1")
                if not self._token or not hmac.compare_digest(given, b"Bearer " + self._token):
                    why = "gate: no token" if not given else "gate: wrong token"
                    raise _Refused(401, why, Verdict(False, why))
                try:
                    async with asyncio.timeout(self.limits.connect_timeout):
                        await tunnel.connect("127.0.0.1", upstream)
                except (OSError, TimeoutError):
                    raise _Refused(
                        502, "the service is not answering", Verdict(True, "gate: service down")
                    ) from None
            except _Refused as r:
                if method != "-" or r.verdict is not None:
                    v = r.verdict or Verdict(False, r.reason)
                    row = self._row(client, host, port, _ip("127.0.0.1"), v, method)
                    self._record(row, r.status)
                extra = 'WWW-Authenticate: Bearer realm="hal-9000"\r\n' if r.status == 401 else ""
                writer.write(_response(r.status, f"hal-9000 gate: {r.reason}", extra))
                await writer.drain()
                return
            self._record(
                self._row(client, host, port, _ip("127.0.0.1"), Verdict(True, "gate"), method)
            )
            try:
                await tunnel.run(writer, reader, head.raw)
            finally:
                tunnel.close()

        return handle


def _ip(text: str) -> Address:
    return ipaddress.ip_address(text)


def _getaddrinfo(host: str, port: int) -> list[Address]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(str(sa[0]).split("%", 1)[0]) for *_, sa in found]


def own_addresses() -> frozenset[Address]:
    """This network namespace's own addresses (from /proc/net), for `policy(own=…)`."""
    found: set[Address] = set()
    with contextlib.suppress(OSError):
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for prev, line in itertools.pairwise(lines):
            if line.strip() == "/32 host LOCAL":
                with contextlib.suppress(ValueError):
                    found.add(ipaddress.ip_address(prev.strip().split()[-1]))
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            with contextlib.suppress(ValueError, IndexError):
                found.add(ipaddress.IPv6Address(int(raw, 16)))
    return frozenset(found)
