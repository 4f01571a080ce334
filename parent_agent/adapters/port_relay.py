"""The relays of workers' ports: a listener on each mapped host port of the parent, each
forwarding to one worker's one listed port on the workers' internal network.

One thread, one asyncio event loop, like the egress proxy. The loop (`app/agent.py`) decides
the mapping (`core/ports.py`) and hands it over with `set_mapping`; this module only acts.

Where a relay connects is never up to the connection: each listener is bound to one
(session, port) pair, and for every connection it asks `target(session, port)` for that
worker's address on the internal network, which the engine gives (the worker running, the
port among its labelled ones, its address inside the workers' subnet and not the gateway).
So a relay reaches that worker's listed port and nothing else: not the parent's own
services, not another worker, not a port the worker did not list, not a worker that took the
address of one that stopped. The bytes are spliced as they come (`tcp_relay`): the relay
reads nothing of them.

Bounded like the proxy: at most `max_connections` at once over all relays, idle tunnels
closed after `idle` seconds (a dev server's live-reload socket is long-lived: an hour).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import cast

from parent_agent.adapters.tcp_relay import Tunnel

log = logging.getLogger(__name__)

Target = Callable[[str, int], str | None]  # (session, port) → its address, or None


@dataclass(frozen=True)
class RelayLimits:
    max_connections: int = 512
    connect_timeout: float = 5.0
    target_timeout: float = 5.0  # asking the engine where the worker is
    idle: float = 3600.0


class PortRelays:
    """The listeners, on `host` (every address of the parent by default: the host engine
    forwards a published port to the parent's own address; the firewall rejects workers
    that try them from the inside)."""

    def __init__(
        self,
        target: Target,
        host: str = "0.0.0.0",  # noqa: S104 - the engine forwards to the parent's address; the firewall fences workers off
        limits: RelayLimits = RelayLimits(),
    ) -> None:
        self._target = target
        self._host = host
        self.limits = limits
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[int, tuple[tuple[str, int], asyncio.Server]] = {}
        self._conns: dict[int, set[asyncio.Task[None]]] = {}

    # -- the thread ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="port-relays", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Every listener and connection closed, the thread joined. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._set({}))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None

    def _call(self, coro: Awaitable[object]) -> object:
        assert self._loop is not None  # noqa: S101 - started
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)  # type: ignore[arg-type]

    # -- the interface ------------------------------------------------------------------------

    def set_mapping(self, mapping: Mapping[int, tuple[str, int]]) -> dict[int, str]:
        """Listen on each host port of `mapping` and forward to its (session, port); close
        the others, and the connections they carried. Returns the host ports that could not
        be listened on, each with why (the others listen)."""
        if not mapping and self._thread is None:
            return {}  # nothing to relay: no thread until there is
        self.start()
        problems = self._call(self._set(dict(mapping)))
        return cast(dict[int, str], problems)

    @property
    def listening(self) -> dict[int, tuple[str, int]]:
        return {port: pair for port, (pair, _) in self._servers.items()}

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self._conns.values())

    async def _set(self, mapping: dict[int, tuple[str, int]]) -> dict[int, str]:
        for port, (pair, server) in list(self._servers.items()):
            if mapping.get(port) != pair:
                server.close()
                del self._servers[port]
                for task in self._conns.pop(port, set()):
                    task.cancel()  # the mapping went (a worker stopped): so do its tunnels
        problems: dict[int, str] = {}
        for port, pair in mapping.items():
            if port in self._servers:
                continue
            try:
                server = await asyncio.start_server(
                    self._handler(port, pair), self._host, port, reuse_address=True, backlog=128
                )
            except OSError as e:
                problems[port] = f"cannot listen on {self._host}:{port}: {e.strerror or e}"
                continue
            self._servers[port] = (pair, server)
            log.info("port relay :%s → %s:%s", port, *pair)
        return problems

    # -- one connection -----------------------------------------------------------------------

    def _handler(
        self, host_port: int, pair: tuple[str, int]
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        session, port = pair

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None  # noqa: S101 - inside a task
            conns = self._conns.setdefault(host_port, set())
            if self.connections >= self.limits.max_connections:
                writer.close()
                return
            conns.add(task)
            tunnel = Tunnel(self.limits.idle)
            try:
                await self._relay(tunnel, reader, writer, session, port)
            except (OSError, asyncio.CancelledError, TimeoutError):
                pass  # the browser or the worker went away, or the mapping did
            except Exception:  # one connection's fault must not end the relays
                log.exception("port relay :%s", host_port)
            finally:
                conns.discard(task)
                tunnel.close()
                writer.close()

        return handle

    async def _relay(
        self,
        tunnel: Tunnel,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: str,
        port: int,
    ) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.limits.target_timeout):
            address = await loop.run_in_executor(None, self._target, session, port)
        if address is None:
            log.debug("port relay: %s:%s is not reachable now", session, port)
            return  # closed: the browser says the connection was reset
        async with asyncio.timeout(self.limits.connect_timeout):
            await tunnel.connect(address, port)
        await tunnel.run(writer, reader, b"")
