"""hal-9000's managed settings: the hooks that report each worker's agent state."""

from __future__ import annotations

import json

from parent_agent.core.agent_state import HOOK_EVENTS
from parent_agent.core.claude_state import MANAGED_SETTINGS, hook_settings


def test_every_hook_event_runs_hal_worker_hook_and_nothing_else_is_enforced() -> None:
    hooks = MANAGED_SETTINGS["hooks"]
    assert set(hooks) == set(HOOK_EVENTS)
    for event, groups in hooks.items():
        assert len(groups) == 1
        (group,) = groups
        assert group["hooks"] == [
            {"type": "command", "command": "/usr/local/bin/hal-worker hook", "timeout": 5}
        ]
        if event in ("PreToolUse", "PostToolUse", "PermissionRequest"):
            assert group["matcher"] == "*"  # every tool
        else:
            assert "matcher" not in group
    # the user's own hooks still run; the autoupdater stays off
    assert "allowManagedHooksOnly" not in MANAGED_SETTINGS
    assert MANAGED_SETTINGS["env"] == {"DISABLE_AUTOUPDATER": "1"}
    json.dumps(MANAGED_SETTINGS)  # written as JSON


def test_hook_settings_are_fresh_dicts() -> None:
    a, b = hook_settings(["Stop"]), hook_settings(["Stop"])
    a["Stop"][0]["hooks"][0]["command"] = "x"
    assert b["Stop"][0]["hooks"][0]["command"] != "x"
