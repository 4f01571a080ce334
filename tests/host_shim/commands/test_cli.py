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


def _claudy(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    import subprocess
    import sys

    full = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path), **env}
    full.pop("DOCKER_HOST", None)
    full.update(env)
    res = subprocess.run(
        [sys.executable, "-m", "host_shim", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return res.returncode, res.stderr


def test_a_bad_engine_is_refused_before_anything_runs(tmp_path: Path) -> None:
    code, err = _claudy(tmp_path, "--engine", "http://box:2375", "status")
    assert code == 2, err
    assert "--engine is not an engine; expected unix:///" in err and "ssh://user@host" in err
    code, err = _claudy(tmp_path, "--engine", "ssh://a", "--context", "b", "status")
    assert code == 2 and "--engine and --context both name an engine" in err, err
    code, err = _claudy(tmp_path, "status", DOCKER_HOST="ftp://x")
    assert code == 2 and "DOCKER_HOST is not an engine" in err, err


def test_the_engine_flag_goes_before_a_directory_and_its_failure_names_it(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    proj.mkdir()
    # `claudy --engine URL -d DIR` opens DIR (the flag's value is not taken for a command)
    code, err = _claudy(tmp_path, "--engine", "unix:///nonexistent/d.sock", "-d", str(proj))
    assert code == 3, err
    assert "the engine unix:///nonexistent/d.sock does not answer" in err, err
    assert "claudy --engine URL doctor" in err
    code, err = _claudy(tmp_path, "--context", "nowhere", "status")
    assert code == 2 and "--context: no Docker context 'nowhere' (known: default)" in err, err


def test_the_config_engine_is_used_and_the_environment_wins_over_it(tmp_path: Path) -> None:
    cfg = tmp_path / "hal9000"
    cfg.mkdir()
    (cfg / "config.toml").write_text('[parent]\nengine = "unix:///nonexistent/cfg.sock"\n')
    code, err = _claudy(tmp_path, "status")
    assert code == 3 and "unix:///nonexistent/cfg.sock does not answer" in err, err
    code, err = _claudy(tmp_path, "status", DOCKER_HOST="unix:///nonexistent/env.sock")
    assert code == 3 and "unix:///nonexistent/env.sock does not answer" in err, err
