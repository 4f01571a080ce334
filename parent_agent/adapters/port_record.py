"""Which worker's port had which host port, kept across restarts (`/data/ports.json`).

Written only by the loop, never mounted in a worker; atomic (`config_edit.atomic_write`). A
file that is missing, too large, truncated or of another version reads as empty: the
mapping starts afresh (workers get the lowest free ports) rather than not at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from hal_common.config_edit import atomic_write
from hal_common.layout import ParentLayout
from parent_agent.adapters import json_record
from parent_agent.core.ports import Want

log = logging.getLogger(__name__)

VERSION = 1
MAX_BYTES = 1 << 20


def load(layout: ParentLayout) -> dict[Want, int]:
    path, instead = layout.ports_record, "ports are mapped afresh"
    doc = json_record.read(path, VERSION, MAX_BYTES, instead)
    if doc is None:
        return {}
    try:
        out: dict[Want, int] = {}
        for entry in doc.get("ports") or ():
            name, port, host = entry["name"], entry["port"], entry["host_port"]
            if isinstance(name, str) and isinstance(port, int) and isinstance(host, int):
                out[Want(name, port)] = host
        return out
    except (TypeError, KeyError, AttributeError) as e:
        json_record.ignored(path, e, instead)
        return {}


def save(layout: ParentLayout, record: Mapping[Want, int]) -> None:
    """Write the record atomically; OSError (a full disk) leaves the last one in place."""
    rows = [{"name": w.session, "port": w.port, "host_port": h} for w, h in sorted(record.items())]
    atomic_write(layout.ports_record, json.dumps({"version": VERSION, "ports": rows}, indent=1))
