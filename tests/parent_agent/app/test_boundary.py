"""The loop's side of the egress boundary, without an engine: who is behind an address, which
gates the firewall opens, and the rules it writes."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hal_common import labels
from hal_common.config import parse_config
from hal_common.layout import ParentLayout
from parent_agent.adapters import firewall
from parent_agent.app import boundary as boundary_mod
from parent_agent.app.boundary import Boundary, session_of
from parent_agent.core.model import Listed


class Members:
    """Stands in for the engine's one call the map needs."""

    def __init__(self) -> None:
        self.members: dict[str, str] = {}
        self.listed: list[Listed] = []
        self.calls = 0

    def network_members(self) -> dict[str, str]:
        self.calls += 1
        return dict(self.members)

    def containers(self, *_a: Any, **_kw: Any) -> list[Listed]:
        return list(self.listed)


def test_a_worker_gets_its_trusted_projects_entries(tmp_path: Path) -> None:
    b = Boundary(ParentLayout(run_dir=tmp_path))
    engine = Members()
    b.engine = engine  # type: ignore[assignment]
    b.cfg = parse_config('[network]\nallow = ["mine.example"]\n')

    class Proxy:
        policies: ClassVar[dict[str, Any]] = {}

        def set_worker_policies(self, policies: Any) -> None:
            Proxy.policies = dict(policies)

    b.proxy = Proxy()  # type: ignore[assignment]
    record = {"sha256": "x", "trusted": True, "limits": {}, "allow": ["theirs.example"]}
    untrusted = {**record, "trusted": False}
    engine.listed = [
        Listed(
            "1",
            "hal9000-w-a",
            "running",
            "",
            {labels.SESSION: "a", labels.PROJECT_CONFIG: json.dumps(record)},
        ),
        Listed(
            "2",
            "hal9000-w-b",
            "running",
            "",
            {labels.SESSION: "b", labels.PROJECT_CONFIG: json.dumps(untrusted)},
        ),
    ]
    b.refresh()
    assert set(Proxy.policies) == {"a"}
    public = ipaddress.ip_address("93.184.216.34")
    for host in ("theirs.example", "mine.example"):
        assert Proxy.policies["a"].decide(host, 443, public).allowed
    assert not Proxy.policies["a"].decide("other.example", 443, public).allowed


def test_who_maps_worker_addresses_and_looks_up_a_miss_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = Boundary(ParentLayout(run_dir=tmp_path))
    engine = Members()
    engine.members = {"10.213.213.2": "hal9000-w-one-1234", "10.213.213.9": "hal9000-s-x"}
    b.engine = engine  # type: ignore[assignment]
    b.refresh()
    assert b.who("10.213.213.2") == "one-1234"
    assert b.who("10.213.213.9") is None  # not a worker
    engine.members["10.213.213.3"] = "hal9000-w-two-5678"  # started since the last refresh
    b._miss_at -= boundary_mod.MISS_EVERY_S  # a second later
    assert b.who("10.213.213.3") == "two-5678"  # the fallback lookup
    calls = engine.calls
    b._miss_at -= boundary_mod.MISS_EVERY_S
    for _ in range(20):
        assert b.who("10.213.213.77") is None
    assert engine.calls == calls + 1  # bounded: one lookup a second, however many misses
    assert session_of("hal9000-w-abc") == "abc" and session_of("other") is None


def test_the_firewall_opens_only_the_gates_that_listen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[int, ...]] = []
    monkeypatch.setattr(firewall, "apply", lambda ports: opened.append(tuple(ports)))

    class Proxy:
        gate_ports = frozenset({80, 8811})  # 8000 could not listen

        def set_gates(self, gates: Any, token: str) -> list[str]:
            return ["gate 10.213.213.1:8000: address in use"]

    b = Boundary(ParentLayout(run_dir=tmp_path))
    b.proxy = Proxy()  # type: ignore[assignment]
    problems = b.set_gates({8000: 8000, 80: 80, 8811: 8811}, "t")
    assert problems and opened == [(80, 8811)]


def test_the_rules_accept_the_proxy_and_the_gates_and_reject_the_rest() -> None:
    text = firewall.rules([8811, 8000])
    lines = text.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    accepts = [ln for ln in lines if "--dport" in ln]
    assert accepts == [
        f"-A HAL-WORKERS -p tcp -d 10.213.213.1 --dport {p} -j ACCEPT" for p in (3128, 8000, 8811)
    ]
    assert lines.index(accepts[-1]) < lines.index(
        "-A HAL-WORKERS -j REJECT --reject-with icmp-port-unreachable"
    )
    assert "-A HAL-WORKERS-FWD -j DROP" in lines
    v6 = firewall.rules([8811], v6=True)
    assert "--dport" not in v6 and "icmp6-port-unreachable" in v6
    with pytest.raises(ValueError):
        firewall.rules([0])
