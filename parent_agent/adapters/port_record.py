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
from parent_agent.core.ports import Want

log = logging.getLogger(__name__)

VERSION = 1
MAX_BYTES = 1 << 20


def load(layout: ParentLayout) -> dict[Want, int]:
    path = layout.ports_record
    try:
        with path.open("rb") as f:
            text = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        log.warning("cannot read %s: %s; ports are mapped afresh", path, e)
        return {}
    try:
        if len(text) > MAX_BYTES:
            raise ValueError("too large")
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise ValueError("not a record of this version")
        out: dict[Want, int] = {}
        for entry in doc.get("ports") or ():
            name, port, host = entry["name"], entry["port"], entry["host_port"]
            if isinstance(name, str) and isinstance(port, int) and isinstance(host, int):
                out[Want(name, port)] = host
        return out
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        log.warning("ignoring %s (%s): ports are mapped afresh", path, e)
        return {}


def save(layout: ParentLayout, record: Mapping[Want, int]) -> None:
    """Write the record atomically; OSError (a full disk) leaves the last one in place."""
    rows = [{"name": w.session, "port": w.port, "host_port": h} for w, h in sorted(record.items())]
    atomic_write(layout.ports_record, json.dumps({"version": VERSION, "ports": rows}, indent=1))
