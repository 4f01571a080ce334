"""The ports plan: which host port each running worker's listed port gets (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hal_common import labels
from hal_common.ports import PortRange
from parent_agent.app.port_map import worker_address
from parent_agent.core.model import Worker
from parent_agent.core.ports import NO_RANGE, Want, plan, remember, rows, wanted

RANGE = PortRange(47100, 47102)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def worker(name: str, ports: tuple[int, ...], minute: int = 0, state: str = "running") -> Worker:
    return Worker(
        name, f"hal9000-w-{name}", f"/p/{name}", "img", state, None, T0 + timedelta(minutes=minute),
        ports=ports,
    )  # fmt: skip


def test_the_running_workers_want_their_ports_the_one_made_first_first() -> None:
    found = [worker("b", (3000,), 1), worker("a", (3000, 8080), 2), worker("c", (9,), 0, "exited")]
    assert wanted(found) == (Want("b", 3000), Want("a", 3000), Want("a", 8080))


def test_two_workers_wanting_3000_get_the_next_host_port_each() -> None:
    p = plan([Want("a", 3000), Want("b", 3000)], {}, {}, RANGE)
    assert p.mapping == {47100: Want("a", 3000), 47101: Want("b", 3000)}
    assert not p.problems


def test_a_live_mapping_stays_and_a_recorded_port_comes_back_when_free() -> None:
    current = {47102: Want("b", 3000)}
    record = {Want("a", 3000): 47101, Want("b", 3000): 47102}
    p = plan([Want("a", 3000), Want("b", 3000)], current, record, RANGE)
    assert p.mapping == {47101: Want("a", 3000), 47102: Want("b", 3000)}


def test_a_stopped_workers_port_is_kept_for_it_while_another_is_free() -> None:
    record = {Want("stopped", 3000): 47100}
    p = plan([Want("new", 3000)], {}, record, RANGE)
    assert p.mapping == {47101: Want("new", 3000)}
    # with no other free, the new worker takes it (the stopped one gets another later)
    live = {47101: Want("x", 1), 47102: Want("y", 1)}
    p = plan([Want("x", 1), Want("y", 1), Want("new", 3000)], live, record, RANGE)
    assert 47100 in p.mapping and p.mapping[47100] == Want("new", 3000)


def test_a_full_range_says_so_and_names_the_holders() -> None:
    wants = [Want("a", 1), Want("b", 1), Want("c", 1), Want("d", 3000)]
    p = plan(wants, {}, {}, RANGE)
    assert p.unmapped == (Want("d", 3000),)
    (problem,) = p.problems
    assert "d:3000 has no host port" in problem
    assert (
        "47100-47102 (3 ports) is full, held by a:1 (:47100), b:1 (:47101), c:1 (:47102)" in problem
    )
    assert "widen [parent] ports" in problem
    listed = rows(wants, p, "127.0.0.1")
    assert [(r.name, r.url) for r in listed] == [
        ("a", "http://127.0.0.1:47100"),
        ("b", "http://127.0.0.1:47101"),
        ("c", "http://127.0.0.1:47102"),
        ("d", None),
    ]
    assert listed[-1].problem == problem


def test_no_published_range_and_unusable_ports() -> None:
    p = plan([Want("a", 3000)], {}, {}, None)
    assert p.mapping == {} and NO_RANGE in p.problems[0]
    p = plan([Want("a", 3000)], {47100: Want("a", 3000)}, {}, RANGE, frozenset({47100}))
    assert p.mapping == {47101: Want("a", 3000)}


def test_the_record_keeps_existing_workers_and_drops_removed_ones() -> None:
    record = {Want("gone", 1): 47100, Want("stopped", 1): 47101, Want("moved", 1): 47102}
    mapping = {47102: Want("new", 1)}
    assert remember(record, mapping, {"stopped", "moved", "new"}) == {
        Want("stopped", 1): 47101,
        Want("new", 1): 47102,  # the host port has one owner in the record
    }


def _attrs(
    session: str = "a", ports: str = "3000", ip: str = "10.213.213.7", state: str = "running"
) -> dict[str, object]:
    return {
        "Config": {"Labels": {labels.ROLE: "worker", labels.SESSION: session, labels.PORTS: ports}},
        "State": {"Status": state},
        "NetworkSettings": {"Networks": {"hal9000-workers": {"IPAddress": ip}}},
    }


def test_the_relay_connects_only_to_that_workers_listed_port_on_the_workers_network() -> None:
    assert worker_address(_attrs(), "a", 3000) == "10.213.213.7"
    assert worker_address(_attrs(), "a", 8000) is None  # not listed
    assert worker_address(_attrs(), "b", 3000) is None  # another session's container
    assert worker_address(_attrs(state="exited"), "a", 3000) is None
    assert worker_address(_attrs(ip="10.213.213.1"), "a", 3000) is None  # the parent itself
    assert worker_address(_attrs(ip="127.0.0.1"), "a", 3000) is None
    assert worker_address(_attrs(ip="172.17.0.2"), "a", 3000) is None
    assert worker_address(_attrs(ip=""), "a", 3000) is None
    assert worker_address(None, "a", 3000) is None
