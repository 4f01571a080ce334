"""Row 9: what the egress proxy adds to a request, against a direct connection.

One request as Claude Code makes it: a new TCP connection (through the proxy: `CONNECT`
and its `200` first), a TLS handshake, one HTTP request, its response. The server is a TLS
server on 127.0.0.1 in a process of its own; the floor is the same request made directly, in
the same run, batches of the two interleaved. Traffic goes to loopback only.

    python -m benchmarks.egress [--reps 5] [--requests 50]      (no engine needed)
"""

from __future__ import annotations

import argparse
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.core import Row, row, table
from hal_testing.loopback import client_context, recv_all, recv_until, self_signed

_SERVER = """
import sys
from pathlib import Path
from hal_testing.loopback import Server, hello, server_context
s = Server(hello, tls=server_context(Path(sys.argv[1]), Path(sys.argv[2])))
print(s.port, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
"""

# The proxy as the parent runs it: a thread in a process of its own (hal-agent's), never
# sharing an interpreter lock with the client.
_PROXY = """
import sys
from pathlib import Path
from hal_common.egress import policy
from parent_agent.adapters.egress_proxy import EgressProxy
p = EgressProxy(policy("allowlist", ["127.0.0.1"]), Path(sys.argv[1]), listen=("127.0.0.1", 0))
p.start()
print(p.address[1], flush=True)
sys.stdin.read()
p.stop()
"""


def _spawn(code: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None  # noqa: S101 - piped
    return proc, int(proc.stdout.readline())


def _request(ctx: ssl.SSLContext, port: int, proxy: tuple[str, int] | None) -> None:
    raw = socket.create_connection(proxy or ("127.0.0.1", port), timeout=10)
    try:
        if proxy is not None:
            raw.sendall(
                f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
            )
            head = recv_until(raw, b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the proxy refused: {head[:80]!r}")
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if not recv_all(s).endswith(b"hello\n"):
                raise RuntimeError("a short response")
    finally:
        raw.close()


def _timed(ctx: ssl.SSLContext, port: int, proxy: tuple[str, int] | None) -> float:
    t0 = time.perf_counter()
    _request(ctx, port, proxy)
    return (time.perf_counter() - t0) * 1000


def _sample(ctx: ssl.SSLContext, port: int, proxy: tuple[str, int], n: int) -> tuple[float, float]:
    """Median milliseconds of `n` requests each way, direct and proxied taking turns (the
    machine's load drifts; alternating keeps the two under the same)."""
    direct: list[float] = []
    through: list[float] = []
    for i in range(n):
        order = (None, proxy) if i % 2 else (proxy, None)
        for via in order:
            (through if via else direct).append(_timed(ctx, port, via))
    return statistics.median(direct), statistics.median(through)


def measure(reps: int, requests: int) -> Row:
    with tempfile.TemporaryDirectory(prefix="halbench-egress-") as tmp:
        cert, key = self_signed(Path(tmp))
        log = Path(tmp) / "egress.jsonl"
        procs = []
        try:
            server, port = _spawn(_SERVER, str(cert), str(key))
            procs.append(server)
            proxy, proxy_port = _spawn(_PROXY, str(log))
            procs.append(proxy)
            ctx = client_context(cert)
            via = ("127.0.0.1", proxy_port)
            _sample(ctx, port, via, 5)  # warm both paths (imports, caches)
            direct: list[float] = []
            through: list[float] = []
            for _ in range(reps):
                d, t = _sample(ctx, port, via, requests)
                direct.append(d)
                through.append(t)
        finally:
            for proc in procs:
                assert proc.stdin is not None  # noqa: S101 - piped
                proc.stdin.close()
                proc.wait(10)
        logged = sum(1 for _ in log.open())
        added = statistics.median(through) - statistics.median(direct)
    return row(
        "9",
        "egress proxy: new HTTPS request (CONNECT + TLS + GET) on loopback",
        "ms",
        through,
        floor_name="the same, direct",
        floor=direct,
        target="≤ 1.2×",
        limit=1.2,
        note=f"each sample the median of {requests} requests each way, taking turns; "
        f"added {added:.2f} ms a request; {logged} requests logged",
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    r = measure(args.reps, args.requests)
    print(table([r]))
    print(f"  {r.key}: {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
