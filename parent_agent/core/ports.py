"""Which host port each worker's listed port gets (pure): the loop's mapping plan.

The parent publishes a range of host ports (`ParentLayout.ports`); every running worker that
lists ports (`[worker] ports`, its label) wants one host port per listed port. The plan:

- a mapping that is live stays as it is (a browser tab keeps working);
- a worker's port gets the host port it had before (the record in the data volume) when that
  one is free: the same URL across restarts of the worker, of the parent, and of the agent;
- else the lowest free host port that no stopped worker had (so that it gets its URL back
  too), else the lowest free one at all;
- two workers that list the same port (two tasks of one repository both serving 3000) each
  get their own host port, the one made first the lower;
- with no free host port left, the worker's port has none, and the problem says so and
  names the workers that hold the range.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hal_common.ports import PortRange, url
from hal_common.protocol import PortRow
from parent_agent.core.model import Worker


@dataclass(frozen=True, order=True)
class Want:
    """One listed port of one worker."""

    session: str
    port: int

    def __str__(self) -> str:
        return f"{self.session}:{self.port}"


@dataclass(frozen=True)
class PortPlan:
    mapping: dict[int, Want]  # host port → the worker's port its relay forwards to
    unmapped: tuple[Want, ...] = ()  # listed ports without a host port
    problems: tuple[str, ...] = ()  # one sentence each, for the loop's errors and `ports`

    def host_port(self, want: Want) -> int | None:
        return next((h for h, w in self.mapping.items() if w == want), None)


def wanted(workers: Iterable[Worker]) -> tuple[Want, ...]:
    """The listed ports of the running workers, the one made first first (its listed order),
    so that two workers wanting one port share the range the same way every time."""
    running = [w for w in workers if w.state == "running" and w.ports]
    running.sort(key=lambda w: (w.created.timestamp() if w.created else 0.0, w.name))
    return tuple(Want(w.name, p) for w in running for p in w.ports)


NO_RANGE = (
    "the parent publishes no host ports ([parent] ports is empty, or the parent was made "
    "before ports existed): `claudy down && claudy` makes it anew with [parent] ports"
)


def plan(
    wants: Sequence[Want],
    current: Mapping[int, Want],
    record: Mapping[Want, int],
    published: PortRange | None,
    unusable: frozenset[int] = frozenset(),
) -> PortPlan:
    """The mapping for `wants` (in order), keeping the `current` one where it still fits,
    preferring each want's host port in `record`, never a host port in `unusable` (one the
    parent could not listen on)."""
    if published is None:
        problems = tuple(f"{w} has no host port: {NO_RANGE}" for w in wants)
        return PortPlan({}, tuple(wants), problems)
    usable = [p for p in published if p not in unusable]
    wanted_set = set(wants)
    mapping = {h: w for h, w in current.items() if w in wanted_set and h in usable}
    placed = set(mapping.values())
    # host ports other workers (stopped ones, or not yet placed) had: taken last
    kept_for = {h: w for w, h in record.items() if w not in placed}
    unmapped: list[Want] = []
    for want in wants:
        if want in placed:
            continue
        free = [p for p in usable if p not in mapping]
        before = record.get(want)
        if before in free:
            host: int | None = before
        else:
            host = next((p for p in free if p not in kept_for), free[0] if free else None)
        if host is None:
            unmapped.append(want)
            continue
        mapping[host] = want
        placed.add(want)
    problems = tuple(full(w, published, mapping, unusable) for w in unmapped)
    return PortPlan(dict(sorted(mapping.items())), tuple(unmapped), problems)


def full(
    want: Want, published: PortRange, mapping: Mapping[int, Want], unusable: Iterable[int]
) -> str:
    holders = ", ".join(f"{w} (:{h})" for h, w in sorted(mapping.items()))
    bad = sorted(unusable)
    also = f"; {', '.join(map(str, bad))} cannot be listened on in the parent" if bad else ""
    return (
        f"{want} has no host port: the parent's range {published} ({published.size} ports) "
        f"is full, held by {holders or 'nobody'}{also}. Stop a worker (its ports are freed "
        "at once), or widen [parent] ports (then `claudy down && claudy`)"
    )


def remember(
    record: Mapping[Want, int], mapping: Mapping[int, Want], sessions: Iterable[str]
) -> dict[Want, int]:
    """The record after `mapping`: each mapped port's host port; the entries of workers that
    still exist (`sessions`, running or stopped) otherwise kept, unless their host port went
    to another worker; a removed worker's entries dropped."""
    alive = set(sessions)
    taken = {h for h in mapping}
    out = {w: h for w, h in record.items() if w.session in alive and h not in taken}
    out.update({w: h for h, w in mapping.items()})
    return dict(sorted(out.items()))


def rows(wants: Sequence[Want], port_plan: PortPlan, address: str) -> tuple[PortRow, ...]:
    """`hal-agent ports`: each listed port of each running worker, with its URL or why it
    has none."""
    why = dict(zip(port_plan.unmapped, port_plan.problems, strict=True))
    out = []
    for want in sorted(wants):
        host = port_plan.host_port(want)
        out.append(
            PortRow(
                name=want.session,
                port=want.port,
                url=url(address, host) if host is not None else None,
                host_port=host,
                problem=why.get(want),
            )
        )
    return tuple(out)
