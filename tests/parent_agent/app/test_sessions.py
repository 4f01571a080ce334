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


def test_a_workers_project_entries_come_from_its_label_when_trusted() -> None:
    import json

    from hal_common import labels
    from parent_agent.app.boundary import project_allow

    body = {"sha256": "x", "trusted": True, "limits": {}, "allow": ["a.example"]}
    assert project_allow({labels.PROJECT_CONFIG: json.dumps(body)}) == ("a.example",)
    body["trusted"] = False
    assert project_allow({labels.PROJECT_CONFIG: json.dumps(body)}) == ()
    assert project_allow({}) == () and project_allow({labels.PROJECT_CONFIG: "{"}) == ()


def test_the_template_label_stays_the_users_and_the_project_has_its_own() -> None:
    from hal_common import labels
    from hal_common.config import parse_config
    from hal_common.project_config import merge, parse_project
    from parent_agent.core.spec import template_hash, worker_spec

    user = parse_config("")
    pf = parse_project(b'[worker]\nprofile = "go"\nmemory = "1g"\n[worker.env]\nA = "1"\n', "f")
    cfg, overlay = merge(user, pf, "/p", None)
    spec = worker_spec("/p", cfg.worker, 1000, 1000, {}, overlay=overlay)
    assert spec.image == "hal9000/worker:go" and spec.memory == 1 << 30
    assert spec.env == {"A": "1"}
    assert spec.labels[labels.TEMPLATE] == template_hash(user.worker)
    assert '"memory":"1g"' in spec.labels[labels.PROJECT_CONFIG]
