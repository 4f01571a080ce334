"""The workers' ports as the loop keeps them: the plan, the relays that carry it out, the
record that keeps each worker's host port across restarts.

Only the agent loop drives it: `apply(workers)` after each listing of the workers (cheap when
the running workers' ports did not change), `stop` at shutdown. The relays' thread asks
`target` for a worker's address at every connection (one inspect of that one container).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from hal_common import labels
from hal_common.egress import GATEWAY, WORKER_NETWORK, WORKER_SUBNET
from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_common.naming import container_name
from hal_common.ports import PortRange, parse_ports, parse_range
from hal_common.protocol import PortRow
from parent_agent.adapters import port_record
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.port_relay import PortRelays
from parent_agent.core import ports as ports_core
from parent_agent.core.model import Worker

log = logging.getLogger(__name__)

_SUBNET = ipaddress.ip_network(WORKER_SUBNET)
_GATEWAY = ipaddress.ip_address(GATEWAY)


def worker_address(attrs: dict[str, object] | None, session: str, port: int) -> str | None:
    """A worker's address on the internal network from its inspect data, if the relay of its
    `port` may connect there: a running worker of that session that lists `port`, at an
    address inside the workers' subnet that is not the parent's own."""
    if not isinstance(attrs, dict):
        return None
    config = attrs.get("Config") or {}
    state = attrs.get("State") or {}
    found = (config.get("Labels") if isinstance(config, dict) else None) or {}
    if (
        not isinstance(state, dict)
        or not isinstance(found, dict)
        or state.get("Status") != "running"
    ):
        return None
    if found.get(labels.ROLE) != labels.ROLE_WORKER or found.get(labels.SESSION) != session:
        return None
    if port not in parse_ports(str(found.get(labels.PORTS, ""))):
        return None
    settings = attrs.get("NetworkSettings") or {}
    networks = (settings.get("Networks") if isinstance(settings, dict) else None) or {}
    net = networks.get(WORKER_NETWORK) if isinstance(networks, dict) else None
    text = str(net.get("IPAddress") or "") if isinstance(net, dict) else ""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip not in _SUBNET or ip == _GATEWAY:
        return None
    return str(ip)


class PortMap:
    """The mapping of one parent's published range."""

    def __init__(self, layout: ParentLayout) -> None:
        self.layout = layout
        self.engine: InnerEngine | None = None
        self.published: PortRange | None = None
        try:
            self.published = parse_range(layout.ports)
        except ValueError as e:
            log.error("HAL_PORTS=%r: %s; no worker ports are mapped", layout.ports, e)
        self.address = layout.ports_address or "127.0.0.1"
        self.relays = PortRelays(self.target)
        self.record = port_record.load(layout)
        self.plan = ports_core.PortPlan({})
        self.rows: tuple[PortRow, ...] = ()
        self.unusable: frozenset[int] = frozenset()
        self._applied: tuple[object, ...] | None = None

    def target(self, session: str, port: int) -> str | None:
        """Where the relay of (session, port) connects now (its thread; one inspect)."""
        engine = self.engine
        if engine is None:
            return None
        try:
            attrs = engine.inspect(container_name(session), "finding a worker for its port")
        except HalError as e:
            log.debug("port relay: %s", e)
            return None
        return worker_address(attrs, session, port)

    def apply(self, engine: InnerEngine, workers: Iterable[Worker]) -> list[str]:
        """Map the running workers' listed ports; the new problems, one sentence each (the
        same problem is not told twice in a row)."""
        self.engine = engine
        listed = tuple(workers)
        wants = ports_core.wanted(listed)
        sessions = frozenset(w.name for w in listed)
        key = (wants, sessions)
        if key == self._applied:
            return []
        self._applied = key
        before = set(self.plan.problems)
        for _ in range(3):  # a host port the parent cannot listen on: planned without it
            current = self.plan.mapping
            plan = ports_core.plan(wants, current, self.record, self.published, self.unusable)
            failed = self.relays.set_mapping(
                {h: (w.session, w.port) for h, w in plan.mapping.items()}
            )
            self.plan = plan
            if not failed:
                break
            for why in failed.values():
                log.error("port relay: %s", why)
            self.unusable |= frozenset(failed)
        record = ports_core.remember(self.record, self.plan.mapping, sessions)
        if record != self.record:
            self.record = record
            try:
                port_record.save(self.layout, record)
            except OSError as e:
                log.warning("ports record not saved: %s", e)
        self.rows = ports_core.rows(wants, self.plan, self.address)
        return [p for p in self.plan.problems if p not in before]

    def stop(self) -> None:
        self.relays.stop()
