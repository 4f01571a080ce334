"""The dashboard's shell: its Tab completion is click's, kept as text (no Python at start)."""

from __future__ import annotations

import os
import subprocess
from importlib import resources


def test_the_shell_rc_holds_the_completion_click_makes_today() -> None:
    rc = resources.files("parent_agent").joinpath("shell.rc").read_text()
    kept = rc.split("# BEGIN completion\n")[1].split("# END completion\n")[0]
    made = subprocess.run(
        ["hal-agent"],
        env={**os.environ, "_HAL_AGENT_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert kept.strip() == made.strip(), "regenerate shell.rc's completion block"
    assert "_HAL_AGENT_COMPLETE=bash_complete" in kept
