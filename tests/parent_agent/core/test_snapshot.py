"""The loop's snapshot: what it publishes for the dashboard and `health`, through its JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from parent_agent.core.model import ServiceState, Worker
from parent_agent.core.snapshot import Health, LoopError, Snapshot
from parent_agent.core.usage import Usage

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def worker(i: int, state: str = "running", code: int = 0) -> Worker:
    return Worker(
        f"proj-{i:02d}-0123abcd",
        f"hal9000-w-proj-{i:02d}",
        f"/home/u/src/proj-{i:02d}",
        "hal9000/worker:minimal",
        state,
        NOW - timedelta(seconds=75 + i),
        NOW,
        exit_code=code,
        template="t1",
    )


def test_the_snapshot_round_trips_through_its_json() -> None:
    ws = (worker(1), worker(2, "exited", code=3))
    snap = Snapshot(
        NOW,
        Health(True, False, 5 << 30),
        ws,
        frozenset({ws[0].name}),
        {ws[0].name: Usage(1.5, 10, 20, 3, 0, 0, 0, 0)},
        (LoopError(NOW.isoformat(), "x"),),
        "t1",
        ("parent.cpus",),
        7,
        (ServiceState("chromadb", True, "ok", ":8000", 8000),),
        0.5,
    )
    assert Snapshot.from_json(snap.to_json()) == snap
    for junk in ("", "[]", '{"version": 99}', '{"version": 1}'):
        with pytest.raises(ValueError):
            Snapshot.from_json(junk)


def test_the_last_denial_round_trips_and_a_malformed_one_is_left_out() -> None:
    import json

    from hal_common.protocol import EgressRow

    row = EgressRow(1.5e9, "one-1234", "10.213.213.2", "evil.test", 443, None, "deny",
                    "not in the allowlist", "CONNECT")  # fmt: skip
    snap = Snapshot(now=datetime(2026, 1, 1, tzinfo=UTC), health=Health(True), last_denial=row)
    assert Snapshot.from_json(snap.to_json()).last_denial == row
    doc = json.loads(snap.to_json())
    doc["last_denial"] = {"t": "soon"}
    assert Snapshot.from_json(json.dumps(doc)).last_denial is None
    del doc["last_denial"]  # a snapshot from before the boundary
    assert Snapshot.from_json(json.dumps(doc)).last_denial is None
