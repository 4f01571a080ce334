"""The egress boundary as the loop keeps it: the workers' network, the forward proxy on its
gateway, the firewall on its bridge, and the service gates.

Only the agent loop (`parent_agent.app.agent`) drives it: `start` once the engine is up
(before any worker can be made), `set_policy` on a saved `[network]`, `set_gates` whenever
the enabled services change, `stop` at shutdown. The proxy runs its own thread and asks
`who(ip)` for the worker behind each request: a dict lookup in a map the loop refreshes on
worker events, with one engine lookup (at most once a second) for an address it misses.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping

from hal_common import labels
from hal_common.config import Config
from hal_common.egress import Policy, policy
from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_common.naming import CONTAINER_PREFIX
from hal_common.protocol import EgressRow
from parent_agent.adapters import firewall
from parent_agent.adapters.egress_proxy import EgressProxy, own_addresses
from parent_agent.adapters.engine import InnerEngine

log = logging.getLogger(__name__)

MISS_EVERY_S = 1.0  # an unknown client address asks the engine at most this often


def project_allow(found: Mapping[str, str]) -> tuple[str, ...]:
    """The `[network] allow` entries a worker's project file gave it (its label)."""
    try:
        body = json.loads(found.get(labels.PROJECT_CONFIG) or "{}")
        allow = body.get("allow") or []
        if body.get("trusted") is not True:
            return ()  # entries the user's config has anyway: nothing to add
    except (ValueError, AttributeError):
        return ()
    return tuple(e for e in allow if isinstance(e, str))


def session_of(container: str) -> str | None:
    """The session of a worker's container name (others: None)."""
    return container[len(CONTAINER_PREFIX) :] if container.startswith(CONTAINER_PREFIX) else None


class Boundary:
    """The network, the proxy, the firewall and the gates of one parent."""

    def __init__(self, layout: ParentLayout) -> None:
        self.layout = layout
        self.engine: InnerEngine | None = None
        self.proxy: EgressProxy | None = None
        self.addresses: Mapping[str, str] = {}  # worker IP → session; replaced, never mutated
        self.cfg: Config | None = None
        self.extra: Mapping[str, tuple[str, ...]] = {}  # session → its project's entries
        self.gates: dict[int, int] = {}
        self.open_ports: tuple[int, ...] = ()  # the gates the firewall lets workers reach
        self._token = ""
        self._miss_at = 0.0
        self._lock = threading.Lock()  # one engine lookup at a time

    # --- the loop's side -----------------------------------------------------------------------

    def start(self, engine: InnerEngine, cfg: Config) -> None:
        """The network (made once), the proxy on its gateway, the firewall. HalError (or
        OSError, ValueError) when a part could not be put in place: the caller reports it."""
        self.engine = engine
        self.cfg = cfg
        engine.ensure_network()
        self.refresh()
        self.apply_firewall()  # first: a proxy that fails to start leaves workers fenced in
        if self.proxy is None:
            proxy = EgressProxy(self.policy(cfg), self.layout.egress_log, who=self.who)
            proxy.start()
            self.proxy = proxy
            self.apply_extra()
            log.info("egress proxy listening", extra={"address": str(proxy.address)})
            if self.gates:  # the services were planned before the proxy was up
                self.set_gates(self.gates, self._token)

    def policy(self, cfg: Config) -> Policy:
        return policy(cfg.network.mode, cfg.network.allow, own_addresses())

    def set_policy(self, cfg: Config) -> None:
        self.cfg = cfg
        if self.proxy is not None:
            self.proxy.set_policy(self.policy(cfg))
            self.apply_extra()

    def apply_extra(self) -> None:
        """Each worker whose project file adds `[network] allow` entries (the label its spawn
        wrote, only once the user trusted the file) gets the user's policy with them; a
        worker whose entries do not parse keeps the user's (logged)."""
        if self.proxy is None or self.cfg is None:
            return
        policies: dict[str, Policy] = {}
        for session, entries in self.extra.items():
            try:
                allow = (*self.cfg.network.allow, *entries)
                policies[session] = policy(self.cfg.network.mode, allow, own_addresses())
            except ValueError as e:
                log.warning("worker %s: its project's allow entries are ignored: %s", session, e)
        self.proxy.set_worker_policies(policies)

    def set_gates(self, gates: Mapping[int, int], token: str) -> list[str]:
        """Gates for the services with a port; the firewall opens the ones that listen. The
        problems (a port the gate could not bind), one sentence each."""
        self.gates, self._token = dict(gates), token
        if self.proxy is None:
            return []
        problems = self.proxy.set_gates(self.gates, token)
        self.apply_firewall()
        return problems

    def apply_firewall(self) -> None:
        """Open the gates that listen: a port a gate could not bind (something else holds it,
        maybe on every address) stays closed to workers. Before the proxy runs, the planned
        ones (the proxy opens them as it starts)."""
        listening = self.proxy.gate_ports if self.proxy is not None else frozenset(self.gates)
        self.open_ports = tuple(p for p in sorted(self.gates) if p in listening)
        firewall.apply(self.open_ports)

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        try:
            firewall.remove()
        except HalError as e:
            log.warning("%s", e)

    @property
    def last_denial(self) -> EgressRow | None:
        return self.proxy.last_denial if self.proxy is not None else None

    # --- who is behind a client address --------------------------------------------------------

    def refresh(self) -> None:
        """The workers' addresses from the engine (one call); kept as they were on failure."""
        engine = self.engine
        if engine is None:
            return
        try:
            members = engine.network_members()
        except HalError as e:
            log.debug("worker addresses unknown: %s", e)
            return
        self.addresses = {
            ip: session for ip, name in members.items() if (session := session_of(name))
        }
        try:
            running = engine.containers(labels.ROLE_WORKER, stopped=False, what="listing workers")
        except HalError as e:
            log.debug("workers' project entries unknown: %s", e)
            return
        extra = {c.session: project_allow(c.labels) for c in running}
        extra = {k: v for k, v in extra.items() if k and v}
        if extra != self.extra:
            self.extra = extra
            self.apply_extra()

    def who(self, ip: str) -> str | None:
        """The worker session at `ip` (the proxy's thread: a lookup, rarely one engine call)."""
        found = self.addresses.get(ip)
        if found is not None:
            return found
        with self._lock:
            now = time.monotonic()
            if now - self._miss_at >= MISS_EVERY_S:
                self._miss_at = now
                self.refresh()
        return self.addresses.get(ip)
