"""A versioned JSON record the loop keeps in the parent's data volume (`/data/*.json`).

Written only by the loop, never mounted in a worker; atomic (`config_edit.atomic_write`).
`read` gives the record's object, or None when there is none to use: a file that is
missing, unreadable, too large, torn or of another version reads as no record (logged
with what happens instead), so the parent starts afresh rather than not at all.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def read(path: Path, version: int, max_bytes: int, instead: str) -> dict[str, Any] | None:
    """The object in `path` when it says `"version": version`; else None (`instead` says,
    in the log, what the caller does without it)."""
    try:
        with path.open("rb") as f:
            text = f.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("cannot read %s: %s; %s", path, e, instead)
        return None
    try:
        if len(text) > max_bytes:
            raise ValueError("too large")
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("version") != version:
            raise ValueError("not a record of this version")
    except ValueError as e:
        log.warning("ignoring %s (%s): %s", path, e, instead)
        return None
    return doc


def ignored(path: Path, error: Exception, instead: str) -> None:
    """Say that a record's content was not understood (a caller's own checks failed)."""
    log.warning("ignoring %s (%s): %s", path, error, instead)
