"""A worker's spec and create arguments, and whose uid it runs as."""

from __future__ import annotations

from hal_common import labels
from hal_common.config import WorkerConfig
from hal_common.layout import ParentLayout
from hal_common.naming import container_name, session_name
from parent_agent.core.spec import create_kwargs, pick_owner, worker_spec


def test_worker_spec_and_create_kwargs() -> None:
    cfg = WorkerConfig(memory="1g", cpus=1.5, pids=100, env=("FOO", "MISSING"))
    spec = worker_spec("/home/u/p", cfg, 1000, 1001, environ={"FOO": "1", "SECRET": "x"})
    kw = create_kwargs(spec, ParentLayout())
    assert kw["name"] == container_name(session_name("/home/u/p"))
    assert kw["user"] == "1000:1001" and kw["working_dir"] == "/home/u/p"
    assert kw["volumes"]["/home/u/p"] == {"bind": "/home/u/p", "mode": "rw"}
    state = f"/data/workers/{spec.session}/claude"
    assert kw["volumes"][state] == {"bind": "/home/hal/.claude", "mode": "rw"}
    # the shared config read-only over the private state; the credential the one rw file
    for name in ("settings.json", "CLAUDE.md", "agents", "commands", "skills", "plugins"):
        assert kw["volumes"][f"/config/claude/{name}"] == {
            "bind": f"/home/hal/.claude/{name}",
            "mode": "ro",
        }
    assert kw["volumes"]["/config/claude/.credentials.json"]["mode"] == "rw"
    assert "/config/claude" not in kw["volumes"]  # never the shared home whole
    managed = kw["volumes"]["/run/hal9000/claude-managed"]
    assert managed == {"bind": "/etc/claude-code", "mode": "ro"}
    assert kw["environment"] == {"FOO": "1"}
    assert kw["mem_limit"] == 1 << 30 and kw["nano_cpus"] == 1_500_000_000
    assert kw["pids_limit"] == 100 and kw["network_mode"] == "host" and kw["init"] is True
    assert kw["labels"][labels.SESSION] == spec.session
    assert kw["labels"][labels.PROJECT] == "/home/u/p"
    assert kw["labels"][labels.MANAGED] == "true"


def test_pick_owner_prefers_the_host_user_then_the_project_owner() -> None:
    assert pick_owner(1000, 1000, 0, 0) == (1000, 1000)
    assert pick_owner(0, 0, 1234, 1235) == (1234, 1235)
    assert pick_owner(0, 0, 0, 0) == (0, 0)  # root's own project, opened by root
