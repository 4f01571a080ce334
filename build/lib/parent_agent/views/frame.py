"""The dashboard as bytes for a terminal: the frame the loop writes into the dashboard's pane.

The same `render` that `hal-agent dashboard` shows, drawn to exactly the pane's size (padded
and cropped, no trailing newline, so nothing scrolls), starting at the top left corner."""

from __future__ import annotations

import io

from rich.console import Console
from rich.screen import Screen

from parent_agent.core.snapshot import Snapshot
from parent_agent.views.dashboard import render

HOME = "\x1b[?25l\x1b[H"  # hide the cursor, go to the top left corner


def frame(snap: Snapshot, height: int, width: int) -> bytes:
    """The whole screen for a `width` by `height` terminal: overwrites every cell of it."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        height=height,
        force_terminal=True,
        color_system="256",  # the pane's TERM is tmux-256color
        legacy_windows=False,
        _environ={},  # neither COLUMNS, LINES nor NO_COLOR of the loop's environment
    )
    console.print(Screen(render(snap, height, width)), end="")
    # the pane's tty may not map \n to \r\n (its process set it raw): say both
    return (HOME + out.getvalue().replace("\n", "\r\n")).encode()
