"""The parent's firewall for the workers' bridge: what a worker may send to the parent itself.

Workers sit on an internal network (`hal_common.egress.WORKER_NETWORK`): the engine forwards
nothing out of it, and with ICC off nothing between workers. What is left is the parent's own
namespace, which a worker reaches through the bridge (`WORKER_BRIDGE`) on every address the
parent has and every port it listens on. This module lets through only the forward proxy's
port and the service gates' ports on the gateway address (and replies to connections already
made), and rejects the rest, for IPv4 and IPv6 (a worker's link-local address reaches the
parent's too). A rejection rather than a silent drop: a tool that ignores the proxy fails at
once instead of hanging until its timeout.

The rules live in chains of their own (`HAL-WORKERS`, and `HAL-WORKERS-FWD` for anything the
kernel would forward from the bridge), replaced whole by one `iptables-restore --noflush`
transaction, so there is never a moment with a half-written chain; the jumps from INPUT and
FORWARD are added once. Applied when the network exists, and again whenever the gates change.

Why a subprocess: the kernel's netfilter interface has no well-kept Python binding
(python-iptables is unmaintained and speaks only the legacy backend, while Debian's iptables
and the inner dockerd use nf_tables; pyroute2 does not cover these tables). The `iptables`
programs are in the parent image already (the inner dockerd needs them) and are what dockerd
itself runs. They are called with argument lists, never through a shell, and the rules are
text this module builds from integers and the fixed names only.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hal_common.egress import GATEWAY, PROXY_PORT, WORKER_BRIDGE
from hal_common.errors import HalError

log = logging.getLogger(__name__)

CHAIN = "HAL-WORKERS"
FORWARD_CHAIN = "HAL-WORKERS-FWD"
TIMEOUT_S = 20.0


def rules(ports: Iterable[int], v6: bool = False) -> str:
    """The `iptables-restore --noflush` text that makes both chains anew: replies to what
    is established, the `ports` (the proxy's, the gates') on the gateway address over TCP
    (IPv4 only: nothing of ours listens on IPv6), everything else rejected."""
    lines = [
        "*filter",
        f":{CHAIN} - [0:0]",  # declared: made, or emptied when it exists (--noflush)
        f":{FORWARD_CHAIN} - [0:0]",
        f"-A {CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    ]
    if not v6:
        for port in sorted({PROXY_PORT, *ports}):
            if not 0 < int(port) < 65536:
                raise ValueError(f"not a port: {port!r}")
            lines.append(f"-A {CHAIN} -p tcp -d {GATEWAY} --dport {int(port)} -j ACCEPT")
    reject = "icmp6-port-unreachable" if v6 else "icmp-port-unreachable"
    lines += [
        f"-A {CHAIN} -p tcp -j REJECT --reject-with tcp-reset",
        f"-A {CHAIN} -j REJECT --reject-with {reject}",
        f"-A {FORWARD_CHAIN} -j DROP",
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Tools:
    """The programs for one address family."""

    iptables: str
    restore: str

    @property
    def v6(self) -> bool:
        return self.iptables.startswith("ip6")


V4 = Tools("iptables", "iptables-restore")
V6 = Tools("ip6tables", "ip6tables-restore")
JUMPS = (("INPUT", CHAIN), ("FORWARD", FORWARD_CHAIN))


def _run(argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HalError(f"firewall: {argv[0]} did not run: {e}") from None


def ipv6_on_bridge() -> bool:
    """IPv6 is up on the workers' bridge (it has an address there, link-local at least)."""
    try:
        text = Path("/proc/net/if_inet6").read_text()
    except OSError:
        return False
    return any(line.split()[-1:] == [WORKER_BRIDGE] for line in text.splitlines())


def _apply(tools: Tools, ports: Iterable[int]) -> None:
    res = _run([tools.restore, "--noflush"], rules(ports, tools.v6))
    if res.returncode != 0:
        raise HalError(
            f"firewall: {tools.restore} refused the workers' rules: {res.stderr.strip()}",
            hint="the parent needs NET_ADMIN (claudy gives it) and the iptables programs",
        )
    for parent, chain in JUMPS:
        jump = [parent, "-i", WORKER_BRIDGE, "-j", chain]
        if _run([tools.iptables, "-w", "-C", *jump]).returncode == 0:
            continue
        res = _run([tools.iptables, "-w", "-I", parent, "1", *jump[1:]])
        if res.returncode != 0:
            raise HalError(f"firewall: cannot add {' '.join(jump)}: {res.stderr.strip()}")


def apply(ports: Iterable[int]) -> None:
    """Workers may reach the proxy and `ports` (the gates) on the gateway, nothing else of
    the parent. HalError when a rule cannot be set (the caller reports it: a parent that
    cannot fence its workers must say so loudly)."""
    wanted = sorted(set(ports))
    _apply(V4, wanted)
    try:
        _apply(V6, ())
    except HalError:
        if ipv6_on_bridge():
            raise
        log.debug("firewall: no ip6tables, and no IPv6 on %s", WORKER_BRIDGE)
    log.info("firewall: workers reach the parent on ports %s", [PROXY_PORT, *wanted])


def remove() -> None:
    """The jumps and chains gone (a parent that stops; tests that ran the loop in place)."""
    for tools in (V4, V6):
        for parent, chain in JUMPS:
            jump = [parent, "-i", WORKER_BRIDGE, "-j", chain]
            while _run([tools.iptables, "-w", "-D", *jump]).returncode == 0:
                pass
        for _, chain in JUMPS:
            _run([tools.iptables, "-w", "-F", chain])
            _run([tools.iptables, "-w", "-X", chain])


def status() -> list[str]:
    """What is in place, in words (for `hal-agent doctor`): an empty list when nothing is."""
    out = []
    listed = _run([V4.iptables, "-w", "-S", CHAIN])
    if listed.returncode != 0:
        return []
    accepts = [ln for ln in listed.stdout.splitlines() if "--dport" in ln and "ACCEPT" in ln]
    ports = [ln.split("--dport")[1].split()[0] for ln in accepts]
    out.append(f"{CHAIN}: workers reach the parent on {', '.join(ports) or 'no port'}")
    for parent, chain in JUMPS:
        jump = [parent, "-i", WORKER_BRIDGE, "-j", chain]
        if _run([V4.iptables, "-w", "-C", *jump]).returncode != 0:
            out.append(f"missing: {parent} → {chain}")
    return out
