"""`claudy auth` as a user runs it, where no parent is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_claudy_refuses_an_env_only_key_as_a_user_sees_it(tmp_path: Path) -> None:
    """The real command, with no parent needed: it stops before reaching the engine."""
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "ANTHROPIC_API_KEY": "sk-ant-api03-envonly",
        "PATH": "/usr/bin:/bin",
    }
    res = subprocess.run(
        [sys.executable, "-m", "host_shim", "auth", "import"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1
    assert "ANTHROPIC_API_KEY is set but not imported" in res.stderr
    assert "no Claude credential found" in res.stderr
    assert "sk-ant-api03-envonly" not in res.stderr + res.stdout
