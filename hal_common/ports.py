"""Workers' ports in the host's browser: the host-port range the parent publishes (pure).

`[parent] ports = "47100-47109"` is a range of host ports the parent container publishes on
`[parent] ports_address` (the host's loopback by default) when it is created; inside the
parent each host port P is a relay listening on P that forwards to one worker's listed port
(`[worker] ports = [3000]`) on the workers' internal network. This module is the shared,
pure part: the range's text form and checks, finding a free range, and a mapping's URL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DEFAULT_RANGE = "47100-47109"
DEFAULT_ADDRESS = "127.0.0.1"
LOWEST = 1024  # the parent publishes no privileged host port
HIGHEST = 65535
MAX_SIZE = 100  # each published port is a docker-proxy process on the host (userland proxy)


@dataclass(frozen=True, order=True)
class PortRange:
    """Host ports `first` to `last`, both included."""

    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.first}-{self.last}" if self.last != self.first else str(self.first)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last + 1))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def ports(self) -> tuple[int, ...]:
        return tuple(range(self.first, self.last + 1))

    def shifted(self, first: int) -> PortRange:
        """The same size, starting at `first`."""
        return PortRange(first, first + self.size - 1)


def parse_range(text: str) -> PortRange | None:
    """`"47100-47109"` or `"47100"` → a PortRange; `""` → None (publish nothing).
    ValueError saying what is wrong."""
    text = text.strip()
    if not text:
        return None
    head, sep, tail = text.partition("-")
    if not head.strip().isdigit() or (sep and not tail.strip().isdigit()):
        raise ValueError(
            f"{text!r} is not a port range (use e.g. {DEFAULT_RANGE!r}, or '' for none)"
        )
    first = int(head)
    last = int(tail) if sep else first
    if not LOWEST <= first <= HIGHEST or not LOWEST <= last <= HIGHEST:
        raise ValueError(f"{text!r}: host ports must be {LOWEST} to {HIGHEST}")
    if last < first:
        raise ValueError(f"{text!r}: the range ends before it starts")
    if last - first + 1 > MAX_SIZE:
        raise ValueError(
            f"{text!r} is {last - first + 1} ports; at most {MAX_SIZE} (each is a process on "
            "the host)"
        )
    return PortRange(first, last)


def check_range(text: str) -> str | None:
    """What is wrong with `[parent] ports`, as words after the key's name (None: fine)."""
    try:
        parse_range(text)
    except ValueError as e:
        return f"is {e}"
    return None


def check_address(text: str) -> str | None:
    """`[parent] ports_address` must be an IP address of the host (an interface's, or
    0.0.0.0 for all of them)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return f"is {text!r}, not an IP address (e.g. {DEFAULT_ADDRESS!r}, the host's loopback)"
    return None


def check_worker_ports(ports: tuple[int, ...]) -> str | None:
    """`[worker] ports`: ports a worker's servers listen on, each once."""
    bad = [p for p in ports if not 1 <= p <= HIGHEST]
    if bad:
        return f"has {bad[0]}, which is not a port (1 to {HIGHEST})"
    twice = sorted({p for p in ports if ports.count(p) > 1})
    if twice:
        return f"lists {twice[0]} twice"
    return None


def next_free(
    wanted: PortRange, taken: Callable[[int], bool], stop: int = HIGHEST
) -> tuple[int | None, PortRange | None]:
    """(the first port of `wanted` that is `taken`, or None; the first range of the same size
    from `wanted` upwards whose every port is free, or None when none fits below `stop`)."""
    held = next((p for p in wanted if taken(p)), None)
    if held is None:
        return None, wanted
    first = wanted.first
    while first + wanted.size - 1 <= stop:
        candidate = wanted.shifted(first)
        busy = next((p for p in candidate if taken(p)), None)
        if busy is None:
            return held, candidate
        first = busy + 1
    return held, None


def url(address: str, port: int) -> str:
    """The browser's URL of a host port published on `address` (0.0.0.0: this host's
    loopback reaches it too)."""
    host = "127.0.0.1" if address in ("0.0.0.0", "") else address  # noqa: S104 - a value
    if ":" in host:
        host = "[::1]" if host == "::" else f"[{host}]"
    return f"http://{host}:{port}"


def format_ports(ports: tuple[int, ...]) -> str:
    """The label form of a worker's ports: "3000,8080" ("" for none)."""
    return ",".join(str(p) for p in ports)


def parse_ports(text: str) -> tuple[int, ...]:
    """A label's ports back; what is not a port is left out (a label made by hand)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if part.isdigit() and 1 <= int(part) <= HIGHEST and int(part) not in out:
            out.append(int(part))
    return tuple(out)
