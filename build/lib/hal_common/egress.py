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

import ipaddress
import re
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


# What Claude Code needs to log in and work, and the public package registries. Claude Code's
# own hosts were read from its bundles (1.0.128's cli.js, 2.1.333's binary): the API, OAuth
# (platform.claude.com and claude.ai; console.anthropic.com before 2.x), the model catalog and
# plugins (downloads.claude.ai), claude.ai's connectors (mcp-proxy.anthropic.com), feature
# flags (statsig.anthropic.com, 1.x) and error reports and telemetry (Sentry, Datadog; off
# with DISABLE_TELEMETRY). HTTPS only, except Debian's mirrors, which apt uses over HTTP.
DEFAULT_ALLOW: tuple[str, ...] = (
    # Claude Code
    "api.anthropic.com:443",
    "platform.claude.com:443",
    "claude.ai:443",
    "console.anthropic.com:443",
    "downloads.claude.ai:443",
    "mcp-proxy.anthropic.com:443",
    "statsig.anthropic.com:443",
    "*.ingest.us.sentry.io:443",
    "http-intake.logs.us5.datadoghq.com:443",
    # npm
    "registry.npmjs.org:443",
    # PyPI
    "pypi.org:443",
    "files.pythonhosted.org:443",
    # Debian
    "deb.debian.org:80",
    "deb.debian.org:443",
    "security.debian.org:80",
    "security.debian.org:443",
    # GitHub: git over HTTPS, its API, archives (codeload.), raw files and releases
    # (*.githubusercontent.com), its container registry
    "github.com:443",
    "*.github.com:443",
    "*.githubusercontent.com:443",
    "ghcr.io:443",
)


# -- entries ----------------------------------------------------------------------------------

Kind = Literal["name", "suffix", "net"]
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Entry:
    """One allowlist entry, parsed. `text` is its canonical spelling (what the log shows)."""

    text: str
    kind: Kind
    name: str = ""  # "name": the host; "suffix": the domain after "*."
    net: Network | None = None  # "net": the address or network (a /32 or /128 for one)
    port: int | None = None  # None: any port

    def fits_port(self, port: int) -> bool:
        return self.port is None or self.port == port

    def matches_name(self, host: str) -> bool:
        """A name or suffix entry that matches `host` (already normalised)."""
        if self.kind == "name":
            return host == self.name
        if self.kind == "suffix":
            return host.endswith("." + self.name)
        return False

    def covers(self, addr: Address) -> bool:
        """An IP/CIDR entry whose network holds `addr`."""
        return self.net is not None and self.net.version == addr.version and addr in self.net

    def __str__(self) -> str:
        return self.text


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{entry!r} has port {text!r}; a port is a number from 1 to 65535")
    return int(text)


def _net(text: str, entry: str) -> Network:
    try:
        if "/" not in text:
            return ipaddress.ip_network(ipaddress.ip_address(text))
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address or network") from None
    if str(net) != text and net.with_prefixlen != text:
        raise ValueError(f"{entry!r} has host bits set; did you mean {net.with_prefixlen!r}?")
    return net


def _split_port(text: str) -> tuple[str, int | None]:
    """`[v6]:port`, `[v6]`, `host:port`, `v4/24:port`, a bare IPv6 (no port) → (rest, port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text!r} opens a '[' that it does not close")
        rest, tail = text[1:end], text[end + 1 :]
        if not tail:
            return rest, None
        if not tail.startswith(":"):
            raise ValueError(f"{text!r} has {tail!r} after ']'; write '[address]:port'")
        return rest, _port(tail[1:], text)
    if text.count(":") == 1:
        rest, port = text.split(":")
        return rest, _port(port, text)
    return text, None  # no colon, or an IPv6 address (or network) without brackets


def parse_entry(text: str) -> Entry:
    """One entry as written in the config; ValueError with a readable message when it is not
    one."""
    raw = text.strip()
    if not raw:
        raise ValueError("an entry is empty")
    if any(c.isspace() for c in raw):
        raise ValueError(f"{text!r} has a space in it")
    if "://" in raw or raw.count("/") > 1:
        raise ValueError(f"{text!r} is a URL, not a host name; write the host (and :port) only")
    if "%" in raw:
        raise ValueError(f"{text!r} has a zone ('%…'); an entry is a global address")
    rest, port = _split_port(raw)
    suffix = f":{port}" if port is not None else ""
    if rest[:1].isdigit() or ":" in rest or rest.startswith("["):
        try:
            is_ip = "/" in rest or bool(ipaddress.ip_address(rest))
        except ValueError:
            is_ip = ":" in rest or rest.replace(".", "").isdigit()
        if is_ip:
            net = _net(rest, text)
            one = net.num_addresses == 1
            shown = str(net.network_address) if one else net.with_prefixlen
            if net.version == 6 and port is not None:
                shown = f"[{shown}]"
            return Entry(shown + suffix, "net", net=net, port=port)
    if rest == "*" or rest == "*.":
        raise ValueError(f'{text!r} would allow every host; use mode = "open" for that')
    wild = rest.startswith("*.")
    name = normalise_host(rest[2:] if wild else rest)
    if not name.isascii():
        raise ValueError(f"{text!r} is not ASCII; write the name in its IDNA form (xn--…)")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{text!r} is not a host name, '*.domain', an IP address or a network")
    if "*" in name:
        raise ValueError(f"{text!r}: '*' may only stand first, as in '*.example.com'")
    kind: Kind = "suffix" if wild else "name"
    return Entry(("*." if wild else "") + name + suffix, kind, name=name, port=port)


def normalise_host(host: str) -> str:
    """Lower case, no trailing dot, brackets off an IPv6 literal."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") and not host.endswith("..") else host


def first_bad(entries: Iterable[str]) -> tuple[str, str] | None:
    """The first entry of a config list that does not parse, and why; None when all do."""
    for text in entries:
        try:
            parse_entry(text)
        except ValueError as e:
            return text, str(e)
    return None


def check_allow(entries: Iterable[str]) -> str | None:
    """What is wrong with the first bad entry of a config list, or None (config_schema)."""
    bad = first_bad(entries)
    return f"has a bad entry: {bad[1]}" if bad else None


def literal(host: str) -> Address | None:
    """`host` as an IP address when it is one (brackets, case and a zone aside), else None."""
    try:
        return ipaddress.ip_address(normalise_host(host))
    except ValueError:
        return None


# -- addresses --------------------------------------------------------------------------------

# Beyond `not is_global`: ranges some Python versions count as global, and the IPv6 forms that
# carry an IPv4 address (NAT64, 6to4, Teredo), which could lead to a special one.
_SPECIAL: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


def is_special(addr: Address, own: Iterable[Address] = ()) -> bool:
    """Not a public unicast address of someone else: loopback, private, link-local, CGNAT,
    ULA, unspecified, multicast, reserved, documentation, IPv4 embedded in IPv6, or `own`."""
    if addr in set(own):
        return True
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return True  # ::ffff:a.b.c.d: whatever it maps to, it is no place for a worker
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback or addr.is_link_local:
        return True
    if not addr.is_global:
        return True
    return any(addr.version == n.version and addr in n for n in _SPECIAL)


# -- the policy -------------------------------------------------------------------------------

RULE_OPEN = "open"
DENY_SPECIAL = "special address"  # loopback, private, … without an IP/CIDR entry
DENY_PORT = "port not allowed"  # a name entry matches, for other ports
DENY_UNLISTED = "not in allowlist"


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
        host = normalise_host(host)
        special = is_special(addr, self.own)
        named = False  # a name entry matched the host (for the reason of a denial)
        for e in self.allow:
            if e.kind == "net":
                if e.covers(addr) and e.fits_port(port):
                    return Verdict(True, e.text)
            elif e.matches_name(host):
                named = True
                if e.fits_port(port) and not special:
                    return Verdict(True, e.text)
        if special:
            return Verdict(False, DENY_SPECIAL)
        if self.mode == "open":
            return Verdict(True, RULE_OPEN)
        if named:  # a name entry matched, but none for this port (else it was allowed)
            return Verdict(False, DENY_PORT)
        return Verdict(False, DENY_UNLISTED)

    def may_resolve(self, host: str, port: int) -> Verdict | None:
        """Before any name resolution: a denial when no outcome of resolving `host` could be
        allowed (so the parent's DNS is no side channel for a worker), else None.

        In allowlist mode a name is resolved only when a name entry matches it and the port;
        an IP literal is always decided on its address."""
        host = normalise_host(host)
        if self.mode == "open" or literal(host) is not None:
            return None
        matching = [e for e in self.allow if e.matches_name(host)]
        if any(e.fits_port(port) for e in matching):
            return None
        return Verdict(False, DENY_PORT if matching else DENY_UNLISTED)


def policy(mode: str, allow: Iterable[str], own: Iterable[Address] = ()) -> Policy:
    """`DEFAULT_ALLOW` plus `allow` (config entries) under `mode`; ValueError on a bad entry
    or mode. `own`: the parent's own addresses, special like loopback."""
    if mode not in MODES:
        raise ValueError(f"mode is {mode!r}; expected one of {', '.join(MODES)}")
    entries: list[Entry] = []
    for text in (*DEFAULT_ALLOW, *allow):
        e = parse_entry(text)
        if e not in entries:
            entries.append(e)
    return Policy(mode, tuple(entries), frozenset(own))
