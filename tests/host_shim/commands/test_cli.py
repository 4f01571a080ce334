"""`claudy` as a user runs it, where no engine is needed."""

from __future__ import annotations

import os
from pathlib import Path


def test_claudy_with_a_broken_config_says_where_and_changes_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "hal9000"
    cfg.mkdir()
    (cfg / "config.toml").write_text('[worker]\nmemory = "2g"\ncpus = "many"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "DOCKER_HOST": "unix:///nonexistent"}
    res = subprocess.run(
        [sys.executable, "-m", "host_shim", "-d", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert "config.toml:3:" in res.stderr and "[worker].cpus" in res.stderr
    assert (cfg / "config.toml").read_text().endswith('cpus = "many"\n')
