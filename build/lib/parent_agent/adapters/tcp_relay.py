"""Splice two TCP connections on an event loop: the egress proxy's tunnels and gates.

Protocol to protocol, with no task and no await per chunk: what one side receives is written
to the other side's transport in the same callback, and a full write buffer pauses reading on
the other side (so a slow reader holds at most the transport's high-water mark). A half-close
is passed on; the tunnel ends when both directions are done, when either side resets, or when
no byte has moved either way for `idle` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class _Side(asyncio.Protocol):
    """One connection of a tunnel. Bytes that arrive before the tunnel starts are held."""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.held: list[bytes] | None = []  # None once started
        self.eof = False
        self.lost = False  # closed before the tunnel started

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - a TCP connection
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.held is not None:
            self.held.append(data)
            return
        self.tunnel.last = time.monotonic()
        assert self.peer is not None and self.peer.transport is not None  # noqa: S101
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        if self.held is not None:
            self.held.append(b"")
            return True
        self._pass_eof()
        return True  # keep our writing half open: the other direction may go on

    def _pass_eof(self) -> None:
        self.eof = True
        assert self.peer is not None and self.peer.transport is not None  # noqa: S101
        if self.peer.eof or not self.peer.transport.can_write_eof():
            self.tunnel.close()
        else:
            with contextlib.suppress(OSError, RuntimeError):
                self.peer.transport.write_eof()

    def start(self) -> None:
        held, self.held = self.held or [], None
        for data in held:
            if data:
                self.data_received(data)
            elif not self.lost:
                self._pass_eof()
        if self.lost:
            self.tunnel.close()

    def pause_writing(self) -> None:  # our transport is full: stop reading the other side
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.held is not None:
            self.lost = True  # the tunnel passes on what came first, then ends
            return
        self.tunnel.close()


class Tunnel:
    """Two sides, a client's (adopted from a stream) and an upstream connection."""

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.last = time.monotonic()
        self.client = _Side(self)
        self.upstream = _Side(self)
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watch: asyncio.TimerHandle | None = None

    async def connect(self, host: str, port: int) -> None:
        """Open the upstream side (OSError when refused; the caller bounds the time)."""
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self.upstream, host, port)

    async def run(
        self, client: asyncio.StreamWriter, reader: asyncio.StreamReader, first: bytes
    ) -> None:
        """Take over the client's connection, send `first` and whatever the client sent after
        its head upstream, and splice until the tunnel ends."""
        transport = client.transport
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - a TCP connection
        transport.set_protocol(self.client)  # from here on, bytes arrive at our side
        self.client.transport = transport
        reader.feed_eof()  # the stream will get nothing more: what it holds is the rest
        rest = await reader.read()
        up = self.upstream.transport
        assert up is not None  # noqa: S101 - connected
        if first or rest:
            up.write(first + rest)
        self.client.start()
        self.upstream.start()
        transport.resume_reading()  # the stream may have paused it (its buffer was full)
        self._arm()
        try:
            await self._done
        finally:
            self.close()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        left = self.last + self.idle - time.monotonic()
        if left <= 0:
            self.close()
            return
        self._watch = loop.call_later(left, self._arm)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.close()
        if not self._done.done():
            self._done.set_result(None)
