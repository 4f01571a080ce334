"""The workers' only way out: a small asyncio forward proxy, and the service gates.

Runs in its own thread (its own event loop) in the parent's network namespace, listening on
`GATEWAY:PROXY_PORT` of the workers' internal network:

- `CONNECT host:port` opens a tunnel; an absolute-URI request (`GET http://host/path`) is
  rewritten to origin form and sent on, and then both directions are piped as they come
  (streamed responses stream).
- The request head is read with a size and a time limit; a name is resolved in a thread pool
  with a timeout, and only when the policy could allow it (`Policy.may_resolve`), so a worker
  cannot use the parent's DNS as a side channel; the policy decides on each address actually
  connected to, so a name cannot smuggle in a private one.
- Denied: `403` with a one-line reason; connect failure: `502`; bad request `400`.
- Every request, allowed or denied, is one JSON line in the egress log (`EgressRow`), with
  the worker it came from (`who(client_ip)`); the last denial is kept in memory.
- Gates (`set_gates`): listeners on the proxy's host, one per service port, that want
  `Authorization: Bearer <token>` on the first request head and then pipe the connection to
  `127.0.0.1:<upstream>`.

Why not tinyproxy or squid: see `docs/` and the notes at the end of this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hal_common.egress import GATEWAY, PROXY_PORT, Address, Policy
from hal_common.protocol import EgressRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyLimits:
    """Bounds on what a worker can make the proxy hold."""

    max_connections: int = 512  # open client connections, proxy and gates together
    head_bytes: int = 16 << 10  # a request head larger than this: 431
    head_timeout: float = 10.0  # seconds for the whole head to arrive: else 408
    resolve_timeout: float = 5.0
    connect_timeout: float = 10.0
    idle_timeout: float = 600.0  # a tunnel with no byte either way for this long is closed


def _nobody(_ip: str) -> str | None:
    return None


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
        raise NotImplementedError

    def start(self) -> None:
        """Bind the proxy's listener and serve in a new thread; OSError when it cannot bind."""
        raise NotImplementedError

    def stop(self) -> None:
        """Close every listener and connection, and join the thread. Idempotent."""
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        """Where the proxy listens (the port bound, when 0 was asked for)."""
        raise NotImplementedError

    def set_policy(self, policy: Policy) -> None:
        """Decide every request from now on with `policy` (open tunnels stay open)."""
        raise NotImplementedError

    def set_gates(self, gates: Mapping[int, int], token: str) -> list[str]:
        """Listen on `(proxy host, listen port)` for each `{listen port: upstream port}` and
        close the gates not named; the token applies to every gate from now on. Returns the
        problems (a port that could not be bound), one sentence each; the others open."""
        raise NotImplementedError

    @property
    def last_denial(self) -> EgressRow | None:
        raise NotImplementedError


def own_addresses() -> frozenset[Address]:
    """This network namespace's own addresses (from /proc/net), for `policy(own=…)`."""
    raise NotImplementedError
