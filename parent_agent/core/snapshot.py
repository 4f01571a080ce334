"""The one picture of the world: what the loop knows, published for everyone else to read.

The agent loop is the only process that lists workers, samples their usage, polls the
services' health and watches the config. After each event and tick it publishes a
`Snapshot`; the dashboard renders it and `hal-agent health` reports from it. Pure: values and
their JSON form (`to_json` / `from_json`), no I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from hal_common.errors import HalError
from hal_common.protocol import EgressRow, PortRow
from hal_common.protocol import (
    LoopError as LoopError,  # the loop's errors, as `health` reports them
)
from parent_agent.core.agent_state import AgentState
from parent_agent.core.model import ServiceState, Worker
from parent_agent.core.usage import Usage

VERSION = 1
MAX_ERRORS = 20  # the loop keeps this many; the dashboard shows the last few
ERROR_WINDOW_S = 600  # errors older than this leave the dashboard


@dataclass(frozen=True)
class Health:
    engine_ok: bool
    images_ok: bool = True
    disk_free: int | None = None  # bytes free under the inner engine's data root
    starting: bool = False  # the parent is starting: the engine is not up yet
    stale_s: int = 0  # the loop has published nothing for this long (0: it is alive)


@dataclass(frozen=True)
class Snapshot:
    """Everything one dashboard frame shows, and what `health` reports."""

    now: datetime
    health: Health
    workers: tuple[Worker, ...] = ()
    windows: frozenset[str] = frozenset()
    usage: dict[str, Usage] = field(default_factory=dict)
    errors: tuple[LoopError, ...] = ()
    template: str = ""  # the current worker template; running workers made otherwise are outdated
    restart_needed: tuple[str, ...] = ()
    max_rows: int = 0  # 0: as many as fit
    services: tuple[ServiceState, ...] = ()
    refresh: float = 2.0  # [dashboard].refresh as the loop last read it
    last_denial: EgressRow | None = None  # the egress proxy's (or a gate's) latest refusal
    agents: dict[str, AgentState] = field(default_factory=dict)  # session → its Claude's state
    claude: str = ""  # the Claude Code version a restart gives; workers on another are outdated
    # a tmux client shows the dashboard window: while none does, the dashboard draws nothing
    viewed: bool = True
    ports: tuple[PortRow, ...] = ()  # each running worker's listed ports and their URLs

    def recent_errors(self, now: datetime, count: int = 3) -> tuple[str, ...]:
        """The last `count` errors younger than ERROR_WINDOW_S, as 'HH:MM:SS text'."""
        out = []
        for e in self.errors[-count:]:
            when = datetime.fromisoformat(e.time)
            if (now - when).total_seconds() < ERROR_WINDOW_S:
                out.append(f"{when:%H:%M:%S} {e.text}")
        return tuple(out)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "now": self.now.isoformat(),
                "health": asdict(self.health),
                "workers": [_worker_json(w) for w in self.workers],
                "windows": sorted(self.windows),
                "usage": {name: asdict(u) for name, u in sorted(self.usage.items())},
                "errors": [asdict(e) for e in self.errors],
                "template": self.template,
                "restart_needed": list(self.restart_needed),
                "max_rows": self.max_rows,
                "services": [asdict(s) for s in self.services],
                "refresh": self.refresh,
                "last_denial": self.last_denial.to_json() if self.last_denial else None,
                "agents": {name: a.to_json() for name, a in sorted(self.agents.items())},
                "claude": self.claude,
                "viewed": self.viewed,
                "ports": [r.to_json() for r in self.ports],
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Snapshot:
        """ValueError (with what is wrong) on anything that is not a snapshot of ours."""
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("version") != VERSION:
                raise ValueError("not a hal-9000 snapshot (or another version)")
            return cls(
                now=datetime.fromisoformat(doc["now"]),
                health=Health(**doc["health"]),
                workers=tuple(_worker_from(w) for w in doc["workers"]),
                windows=frozenset(str(w) for w in doc["windows"]),
                usage={str(n): Usage(**u) for n, u in doc["usage"].items()},
                errors=tuple(LoopError(**e) for e in doc["errors"]),
                template=str(doc["template"]),
                restart_needed=tuple(str(k) for k in doc["restart_needed"]),
                max_rows=int(doc["max_rows"]),
                services=tuple(ServiceState(**s) for s in doc["services"]),
                refresh=float(doc["refresh"]),
                last_denial=_denial(doc.get("last_denial")),
                agents=_agents(doc.get("agents")),
                claude=str(doc.get("claude") or ""),
                viewed=bool(doc.get("viewed", True)),
                ports=_ports(doc.get("ports")),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"malformed snapshot: {e!r}") from None


def _agents(doc: object) -> dict[str, AgentState]:
    out: dict[str, AgentState] = {}
    for name, entry in (doc or {}).items() if isinstance(doc, dict) else ():
        try:
            out[str(name)] = AgentState.from_json(entry)
        except ValueError:
            continue  # a newer parent's entry: that worker shows no state
    return out


def _ports(doc: object) -> tuple[PortRow, ...]:
    out = []
    for i, entry in enumerate(doc if isinstance(doc, list) else ()):
        try:
            out.append(PortRow.from_json(entry, f"ports[{i}]."))
        except HalError:
            continue  # a newer parent's row
    return tuple(out)


def _denial(doc: object) -> EgressRow | None:
    if doc is None:
        return None
    try:
        return EgressRow.from_json(doc, "last_denial.")
    except HalError:
        return None  # a newer parent's row: the dashboard leaves the line out


_TIMES = ("started_at", "created", "finished_at")


def _worker_json(w: Worker) -> dict[str, Any]:
    doc = asdict(w)
    for key in _TIMES:
        value = doc[key]
        doc[key] = value.isoformat() if value is not None else None
    return doc


def _worker_from(doc: dict[str, Any]) -> Worker:
    times = {k: _time(doc.get(k)) for k in _TIMES}
    return Worker(**{**doc, **times, "ports": tuple(doc.get("ports") or ())})


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
