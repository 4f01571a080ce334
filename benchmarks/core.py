"""Pure: samples → rows with median, min, max, floor and ratio; the table and the JSON.

A row is only ever built from samples that were measured; a metric the run did not
measure makes `complete` raise instead of printing a number nobody measured. (And `poll`,
the one wait on a condition every benchmark module uses.)
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


class MissingMeasurement(RuntimeError):
    """A metric the benchmark promises was not measured."""


def poll(check: Callable[[], bool], timeout: float, interval: float = 0.0) -> float:
    """Seconds until `check()` holds (asked every `interval` s, else as fast as it answers);
    MissingMeasurement on timeout."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise MissingMeasurement(f"condition not reached in {timeout}s")
        time.sleep(interval)
    return time.monotonic() - t0


@dataclass(frozen=True)
class Row:
    key: str
    metric: str
    unit: str
    samples: tuple[float, ...]
    floor_name: str = ""
    floor: tuple[float, ...] = ()
    target: str = ""
    limit: float | None = None  # the target as a number: ratio (with a floor) or value
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ratio(self) -> float | None:
        if not self.floor:
            return None
        floor = statistics.median(self.floor)
        return self.median / floor if floor > 0 else None

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        value = self.ratio if self.floor else self.median
        return value is not None and value <= self.limit


def row(key: str, metric: str, unit: str, samples: list[float], **kw: object) -> Row:
    if not samples:
        raise MissingMeasurement(f"{key} ({metric}): no samples")
    floor = kw.pop("floor", ())
    if kw.get("floor_name") and not floor:
        raise MissingMeasurement(f"{key} ({metric}): its floor was not measured")
    return Row(key, metric, unit, tuple(samples), floor=tuple(floor), **kw)  # type: ignore[arg-type]


@dataclass
class Report:
    rows: dict[str, Row] = field(default_factory=dict)
    machine: str = ""

    def add(self, r: Row) -> None:
        self.rows[r.key] = r

    def complete(self, expected: tuple[str, ...]) -> list[Row]:
        missing = [k for k in expected if k not in self.rows]
        if missing:
            raise MissingMeasurement(f"not measured: {', '.join(missing)}")
        return [self.rows[k] for k in expected]


def _fmt(v: float, unit: str) -> str:
    if unit == "s":
        return f"{v:.3f}s"
    if unit == "ms":
        return f"{v:.1f}ms"
    if unit == "MB":
        return f"{v:.1f}MB"
    return f"{v:.2f}{unit}"


def table(rows: list[Row]) -> str:
    head = ["#", "metric", "median", "min", "max", "floor", "ratio", "target", "met"]
    lines = [head]
    for r in rows:
        floor = f"{_fmt(statistics.median(r.floor), r.unit)} ({r.floor_name})" if r.floor else "—"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
        met = {True: "yes", False: "NO", None: "—"}[r.met]
        lines.append(
            [
                r.key,
                r.metric,
                _fmt(r.median, r.unit),
                _fmt(min(r.samples), r.unit),
                _fmt(max(r.samples), r.unit),
                floor,
                ratio,
                r.target,
                met,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def to_json(rows: list[Row], machine: str) -> str:
    data = []
    for r in rows:
        d = asdict(r)
        d.update(
            median=r.median,
            min=min(r.samples),
            max=max(r.samples),
            ratio=r.ratio,
            floor_median=statistics.median(r.floor) if r.floor else None,
            met=r.met,
        )
        data.append(d)
    return json.dumps({"machine": machine, "rows": data}, indent=2)
