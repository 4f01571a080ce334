"""Spawning's pure parts: whose uid a worker runs as, the Claude state it is given."""

from __future__ import annotations

import os
from typing import Any

from hal_common.layout import ParentLayout
from parent_agent.core.spec import pick_owner


def test_uid_of_this_process_is_not_assumed() -> None:
    # host_owner falls back to the directory's owner when the host user is root.
    from parent_agent.app.sessions import host_owner

    st = os.stat(".")
    assert host_owner(".", ParentLayout(host_uid=0)) == pick_owner(0, 0, st.st_uid, st.st_gid)


def test_grant_marks_onboarding_and_trust_and_keeps_the_rest() -> None:
    from parent_agent.core.claude_state import grant

    state: dict[str, Any] = {"theme": "dark", "projects": {"/a": {"allowedTools": ["x"]}}}
    out = grant(state, "/a")
    assert out["theme"] == "dark" and out["hasCompletedOnboarding"] is True
    assert out["projects"]["/a"] == {"allowedTools": ["x"], "hasTrustDialogAccepted": True}
    assert state["projects"]["/a"] == {"allowedTools": ["x"]}  # the input is not changed
    assert grant(out, "/a") == out
