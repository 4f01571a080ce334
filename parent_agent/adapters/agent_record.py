"""The loop's record of the agents, kept across parent restarts: each worker's last state
(with Claude's conversation id, for resume) and which workers ran.

One JSON file in the parent's data volume (`/data/agents.json`), written only by the loop,
never mounted in a worker; atomic (`config_edit.atomic_write`). A file that is missing,
truncated or of another version reads as empty: the parent starts with no record rather than
not at all.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from hal_common.config_edit import atomic_write
from hal_common.layout import ParentLayout
from parent_agent.adapters import json_record
from parent_agent.core.agent_state import AgentState

log = logging.getLogger(__name__)

VERSION = 1
MAX_BYTES = 4 << 20


def record_path(layout: ParentLayout) -> Path:
    return layout.data_dir / "agents.json"


@dataclass(frozen=True)
class Record:
    agents: dict[str, AgentState] = field(default_factory=dict)
    running: frozenset[str] = frozenset()  # the workers that ran when last recorded

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "agents": {name: a.to_json() for name, a in sorted(self.agents.items())},
                "running": sorted(self.running),
            },
            indent=1,
        )


def load(layout: ParentLayout) -> Record:
    path, instead = record_path(layout), "starting without the agents' record"
    doc = json_record.read(path, VERSION, MAX_BYTES, instead)
    if doc is None:
        return Record()
    try:
        agents = {}
        for name, entry in dict(doc.get("agents") or {}).items():
            try:
                agents[str(name)] = AgentState.from_json(entry)
            except ValueError:
                continue
        running = frozenset(str(n) for n in doc.get("running") or ())
        return Record(agents, running)
    except (ValueError, TypeError, AttributeError) as e:
        json_record.ignored(path, e, instead)
        return Record()


def save(layout: ParentLayout, record: Record) -> None:
    """Write the record atomically; OSError (a full disk) leaves the last one in place."""
    atomic_write(record_path(layout), record.to_json())
