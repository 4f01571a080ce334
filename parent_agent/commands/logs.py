"""`hal-agent logs --agent|--dockerd|--dashboard`: the parent's own logs (`claudy logs --agent`
forwards here). They live in the data volume and are rotated by size (`adapters/logfiles`)."""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path

from hal_common.layout import ParentLayout
from parent_agent.adapters import logfiles


def log_paths(layout: ParentLayout) -> dict[str, Path]:
    """The parent's logs by the option that shows them."""
    return {
        "agent": layout.agent_log,
        "dockerd": layout.dockerd_log,
        "dashboard": layout.dashboard_log,
    }


def show_log(layout: ParentLayout, which: str, tail: int | None, follow: bool) -> None:
    """Print the last `tail` lines (None: all that is kept) of one log, then, with `follow`,
    what is appended to it until ctrl-c. A log not written yet prints nothing (and says so
    on stderr)."""
    path = log_paths(layout)[which]
    out = sys.stdout.buffer
    if not logfiles.generations(path):
        print(f"{path}: nothing logged yet", file=sys.stderr)
    text, read = logfiles.tail_lines(path, tail)
    out.write(text)
    out.flush()
    if not follow:
        return
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        for chunk in logfiles.follow(path, threading.Event(), offset=read):
            out.write(chunk)
            out.flush()
