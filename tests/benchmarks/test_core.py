"""The benchmark's own arithmetic and its refusal to print what it did not measure."""

from __future__ import annotations

import json

import pytest

from benchmarks.core import MissingMeasurement, Report, row, table, to_json


def test_ratio_median_and_target() -> None:
    r = row(
        "1",
        "spawn",
        "s",
        [0.6, 0.5, 0.7],
        floor_name="bare run",
        floor=[0.3, 0.4, 0.2],
        target="≤ 1.5×",
        limit=1.5,
    )
    assert r.median == 0.6 and r.ratio == pytest.approx(2.0)
    assert r.met is False
    ok = row("7", "render", "ms", [8.0, 9.0], target="≤ 100 ms", limit=100.0)
    assert ok.ratio is None and ok.met is True


def test_a_metric_without_samples_or_without_its_floor_fails_loudly() -> None:
    with pytest.raises(MissingMeasurement, match="no samples"):
        row("2", "cold start", "s", [])
    with pytest.raises(MissingMeasurement, match="floor was not measured"):
        row("3", "attach", "s", [1.0], floor_name="docker exec true", floor=[])


def test_a_report_missing_a_row_refuses_to_print() -> None:
    rep = Report()
    rep.add(row("1", "spawn", "s", [0.5]))
    with pytest.raises(MissingMeasurement, match="not measured: 2"):
        rep.complete(("1", "2"))


def test_table_and_json_carry_only_measured_numbers() -> None:
    rows = [
        row(
            "1",
            "spawn",
            "s",
            [0.5, 0.7],
            floor_name="bare",
            floor=[0.25],
            limit=1.5,
            target="≤ 1.5×",
        ),
        row("6a", "image", "MB", [488.5], limit=300.0),
    ]
    text = table(rows)
    assert "2.40×" in text and "NO" in text and "488.5MB" in text
    data = json.loads(to_json(rows, "test machine"))
    assert data["machine"] == "test machine"
    assert data["rows"][0]["samples"] == [0.5, 0.7] and data["rows"][0]["floor_median"] == 0.25
    assert data["rows"][1]["ratio"] is None and data["rows"][1]["met"] is False


def test_the_egress_row_is_measured_on_loopback() -> None:
    """Row 9 end to end, tiny: a TLS server and the proxy, each in a process of its own."""
    from benchmarks.egress import measure

    r = measure(1, 3)
    assert r.key == "9" and r.floor and r.samples and r.ratio is not None
    assert "requests logged" in r.note
