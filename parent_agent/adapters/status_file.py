"""What the loop wants others to see: recent errors and parent keys awaiting a restart.

Written atomically by `hal-agent run`; read by the dashboard and `hal-agent health`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hal_common import paths

MAX_ERRORS = 20


@dataclass
class StatusFile:
    path: Path = paths.STATUS_FILE
    errors: list[dict[str, str]] = field(default_factory=list)
    restart_needed: list[str] = field(default_factory=list)

    def add_error(self, text: str) -> None:
        entry = {"time": datetime.now(UTC).isoformat(), "text": text}
        self.errors = [*self.errors, entry][-MAX_ERRORS:]
        self.write()

    def need_restart(self, keys: tuple[str, ...]) -> None:
        self.restart_needed = sorted(set(self.restart_needed) | set(keys))
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"errors": self.errors, "restart_needed": self.restart_needed}))
        os.replace(tmp, self.path)


def read(path: Path = paths.STATUS_FILE) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"errors": [], "restart_needed": []}
    return data if isinstance(data, dict) else {"errors": [], "restart_needed": []}
