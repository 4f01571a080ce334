"""The egress boundary's rules: the workers' network, the allowlist's entries, the verdicts.

Pure: no sockets, no name resolution. The parent's forward proxy
(`parent_agent.adapters.egress_proxy`) resolves a name, asks `Policy.decide` about the
address it is about to connect to, and connects to exactly that address (no second
resolution), so a name cannot smuggle in a private address.

An entry (config `[network] allow`) is one of, each with an optional `:port`:

- `host.example`: that name (case-insensitive, a trailing dot ignored);
- `*.example.com`: every name below `example.com` (not `example.com` itself);
- `192.0.2.7`, `2001:db8::1` (`[2001:db8::1]:443` with a port): that address;
- `192.0.2.0/24`, `2001:db8::/32` (`[2001:db8::/32]:443`): that network.

An entry without a port allows every port.

A request (host, port, addr) is allowed when the port fits an entry and either a name entry
matches the host and `addr` is public, or an IP/CIDR entry covers `addr`. Special addresses
(loopback, private, link-local with the metadata address 169.254.169.254, CGNAT, ULA,
unspecified, multicast, reserved, documentation, the IPv6 forms that embed an IPv4 address,
and the parent's own addresses) are reachable only through an IP/CIDR entry that covers them.
In `open` mode any public address is allowed; special ones still need an entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

# -- the workers' network (the plan's names; the wiring creates it) -------------------------

WORKER_NETWORK = "hal9000-workers"  # an --internal bridge in the inner engine, ICC off
WORKER_BRIDGE = "hal-workers0"  # its bridge interface in the parent's namespace
WORKER_SUBNET = "10.213.213.0/24"
GATEWAY = "10.213.213.1"  # the parent's address on it: the proxy and the gates listen here
PROXY_PORT = 3128
PROXY_URL = f"http://{GATEWAY}:{PROXY_PORT}"
NO_PROXY = f"localhost,127.0.0.1,{GATEWAY}"

MODES = ("allowlist", "open")
LOG_MAX_BYTES = 1 << 20  # the egress log rotates to `.1` past this

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def proxy_env() -> dict[str, str]:
    """The environment every worker gets: both spellings, since tools differ."""
    return {
        "HTTPS_PROXY": PROXY_URL,
        "HTTP_PROXY": PROXY_URL,
        "https_proxy": PROXY_URL,
        "http_proxy": PROXY_URL,
        "NO_PROXY": NO_PROXY,
        "no_proxy": NO_PROXY,
    }


# What Claude Code needs to log in and work, and the public package registries.
DEFAULT_ALLOW: tuple[str, ...] = ()  # filled in below the skeleton


# -- entries ----------------------------------------------------------------------------------

Kind = Literal["name", "suffix", "net"]


@dataclass(frozen=True)
class Entry:
    """One allowlist entry, parsed. `text` is its canonical spelling (what the log shows)."""

    text: str
    kind: Kind
    name: str = ""  # "name": the host; "suffix": the domain after "*."
    net: Network | None = None  # "net": the address or network (a /32 or /128 for one)
    port: int | None = None  # None: any port

    def fits_port(self, port: int) -> bool:
        raise NotImplementedError

    def matches_name(self, host: str) -> bool:
        """A name or suffix entry that matches `host` (already normalised)."""
        raise NotImplementedError

    def covers(self, addr: Address) -> bool:
        """An IP/CIDR entry whose network holds `addr`."""
        raise NotImplementedError


def parse_entry(text: str) -> Entry:
    """One entry as written in the config; ValueError with a readable message when it is not
    one (the message follows the entry's name: "… is not a host name, …")."""
    raise NotImplementedError


def normalise_host(host: str) -> str:
    """Lower case, no trailing dot, brackets off an IPv6 literal."""
    raise NotImplementedError


def check_allow(entries: Iterable[str]) -> str | None:
    """What is wrong with the first bad entry of a config list, or None (config_schema)."""
    raise NotImplementedError


# -- addresses --------------------------------------------------------------------------------


def is_special(addr: Address, own: Iterable[Address] = ()) -> bool:
    """Not a public unicast address of someone else: loopback, private, link-local, CGNAT,
    ULA, unspecified, multicast, reserved, documentation, IPv4 embedded in IPv6, or `own`."""
    raise NotImplementedError


# -- the policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str  # the entry that allowed it, "open", or why it was denied

    @property
    def verdict(self) -> Literal["allow", "deny"]:
        return "allow" if self.allowed else "deny"


@dataclass(frozen=True)
class Policy:
    mode: str  # "allowlist" | "open"
    allow: tuple[Entry, ...]
    own: frozenset[Address] = field(default_factory=frozenset)  # the parent's own addresses

    def decide(self, host: str, port: int, addr: Address) -> Verdict:
        """The verdict on connecting to `addr`:`port` for a request that named `host`."""
        raise NotImplementedError

    def may_resolve(self, host: str, port: int) -> Verdict | None:
        """Before any name resolution: a denial when no outcome of resolving `host` could be
        allowed (so the parent's DNS is no side channel for a worker), else None.

        In allowlist mode a name is resolved only when a name entry matches it and the port;
        an IP literal is always decided on its address."""
        raise NotImplementedError


def policy(mode: str, allow: Iterable[str], own: Iterable[Address] = ()) -> Policy:
    """`DEFAULT_ALLOW` plus `allow` (config entries) under `mode`; ValueError on a bad entry
    or mode. `own`: the parent's own addresses, special like loopback."""
    raise NotImplementedError
