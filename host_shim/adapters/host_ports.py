"""Which host ports are free for the parent to publish: a bind on the host's address.

claudy runs on the host whose engine publishes the parent's ports (a local engine's socket),
so a port some program already listens on is seen before the parent is created, and the
clash said with the port's number. With a remote engine (`DOCKER_HOST=tcp://…`) nothing
here can tell: the engine's own refusal at start says it (`host_shim.adapters.parent`).
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Callable

Probe = Callable[[int], bool]

_CLASH = ("port is already allocated", "address already in use")
_PORT = re.compile(r"[\d\]]:(\d{1,5})\b")  # the first ADDRESS:PORT


def local_engine(docker_host: str | None) -> bool:
    """The engine runs on this host (its unix socket, or docker-py's default)."""
    return not docker_host or docker_host.startswith("unix://")


def prober(address: str, docker_host: str | None) -> Probe:
    """`taken(port)`: some program on this host listens on `address:port` (always False
    when the engine is not on this host, or the address is not one of this host's)."""
    if not local_engine(docker_host):
        return lambda _port: False
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def taken(port: int) -> bool:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # a connection of a moment ago (TIME_WAIT) is no listener: the engine binds it too
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError as e:
                return e.errno in (errno.EADDRINUSE, errno.EACCES)
        return False

    return taken


def clash(message: str) -> int | None:
    """The host port an engine's refusal to publish names (0 when it names none); None when
    the message is no port clash."""
    if not any(c in message for c in _CLASH):
        return None
    found = _PORT.search(message)
    return int(found.group(1)) if found else 0
