"""Issue 15's tasks in the config: `[worker] copy` (which untracked files a new worktree gets)
and the `diff` prefix key."""

from __future__ import annotations

import pytest

from hal_common.config import parse_config, resolve
from hal_common.errors import ConfigError
from parent_agent.core.keys import bindings


def test_copy_takes_paths_inside_the_repository() -> None:
    cfg = parse_config('[worker]\ncopy = [".env", "config/local.toml"]\n')
    assert cfg.worker.copy == (".env", "config/local.toml")
    assert parse_config("").worker.copy == ()


@pytest.mark.parametrize(
    "entry", ["/etc/passwd", "../x", "a/../../b", ".git/config", ".hal9000/x", "", "a//b", "./a"]
)
def test_copy_refuses_what_leaves_the_repository_or_touches_git(entry: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve(f'[worker]\ncopy = ["{entry}"]\n', "c.toml")
    assert e.value.message.startswith("c.toml:2:8: [worker].copy has ")
    assert "relative to the repository's root" in e.value.message


def test_the_diff_key_runs_hal_agents_diff_in_a_popup() -> None:
    (b,) = [b for b in bindings({}) if b.action == "diff"]
    assert b.key == "G"
    assert b.command[:2] == ("run-shell", "-b") and "hal-agent key diff" in b.command[2]
    (moved,) = [b for b in bindings({"diff": "F5"}) if b.action == "diff"]
    assert moved.key == "F5"
