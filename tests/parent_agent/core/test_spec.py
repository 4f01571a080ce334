"""A worker's spec and create arguments, whose uid it runs as, and how it is confined."""

from __future__ import annotations

import pytest

from hal_common import labels
from hal_common.config import Config, WorkerConfig
from hal_common.config_layers import Collector, env_layer, file_layer, parse_toml
from hal_common.egress import GATEWAY, WORKER_NETWORK, proxy_env
from hal_common.layout import ParentLayout
from hal_common.naming import container_name, session_name
from parent_agent.core.spec import (
    DEDICATED_GID,
    DEDICATED_UID,
    confinement,
    create_kwargs,
    group_text,
    owner_note,
    passwd_text,
    pick_owner,
    same_spec,
    worker_spec,
)


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
    managed = kw["volumes"]["/data/claude-managed"]
    assert managed == {"bind": "/etc/claude-code", "mode": "ro"}
    git = {"GIT_CONFIG_SYSTEM": "/etc/hal/run/gitconfig"}  # a path: the identity is a file
    assert kw["environment"] == {"FOO": "1", **git, **proxy_env()}
    assert kw["mem_limit"] == 1 << 30 and kw["nano_cpus"] == 1_500_000_000
    assert kw["pids_limit"] == 100 and kw["init"] is True
    assert kw["labels"][labels.SESSION] == spec.session
    assert kw["labels"][labels.PROJECT] == "/home/u/p"
    assert kw["labels"][labels.MANAGED] == "true"


def test_create_kwargs_confine_the_worker() -> None:
    layout = ParentLayout(run_dir=ParentLayout().run_dir.parent / "x")
    spec = worker_spec("/home/u/p", WorkerConfig(), 1000, 1001, {}, layout=layout)
    kw = create_kwargs(spec, layout)
    assert kw["cap_drop"] == ["ALL"] and "cap_add" not in kw
    assert kw["security_opt"] == ["no-new-privileges"]  # seccomp: the engine's default profile
    assert kw["privileged"] is False and "devices" not in kw
    assert kw["read_only"] is True
    assert set(kw["tmpfs"]) == {"/tmp", "/var/tmp", "/home/hal"}
    assert (
        "uid=1000,gid=1001" in kw["tmpfs"]["/home/hal"] and "mode=0700" in kw["tmpfs"]["/home/hal"]
    )
    assert all("nosuid" in o and "nodev" in o for o in kw["tmpfs"].values())
    run = layout.worker_run(spec.session)
    # the parent's passwd and group, read-only, next to mounts()' volumes
    assert kw["volumes"][f"{run}/passwd"] == {"bind": "/etc/passwd", "mode": "ro"}
    assert kw["volumes"][f"{run}/group"] == {"bind": "/etc/group", "mode": "ro"}
    # their directory (with `resume`) read-only; the worker's own report directory rw
    assert kw["volumes"][str(run)] == {"bind": "/etc/hal/run", "mode": "ro"}
    reports = layout.worker_reports(spec.session)
    assert kw["volumes"][str(reports)] == {"bind": "/run/hal-report", "mode": "rw"}
    assert reports.parent == run.parent and reports != run
    assert kw["volumes"]["/home/u/p"]["bind"] == "/home/u/p"
    assert not any("docker.sock" in k or "/run/hal9000/docker" in k for k in kw["volumes"])
    # limits always set
    assert kw["mem_limit"] == kw["memswap_limit"] == 4 << 30
    assert kw["nano_cpus"] == 2_000_000_000 and kw["pids_limit"] == 1024


@pytest.mark.parametrize(
    "cfg",
    [
        WorkerConfig(memory="", cpus=0.0, pids=0),
        WorkerConfig(memory="0", pids=-1),
        WorkerConfig(memory="lots", cpus=float("inf")),
        WorkerConfig(cpus=float("nan")),
    ],
)
def test_a_worker_config_without_limits_still_gets_limits(cfg: WorkerConfig) -> None:
    kw = confinement(worker_spec("/p", cfg, 1000, 1000, {}))
    assert kw["mem_limit"] > 0 and kw["nano_cpus"] > 0 and kw["pids_limit"] > 0


def test_pick_owner_never_gives_root() -> None:
    assert pick_owner(1000, 1000, 0, 0) == (1000, 1000)
    assert pick_owner(0, 0, 1234, 1235) == (1234, 1235)
    # root's own project, opened by root: the dedicated uid, with the project's group
    assert pick_owner(0, 0, 0, 50) == (DEDICATED_UID, 50)
    assert pick_owner(0, 0, 0, 0) == (DEDICATED_UID, DEDICATED_GID)  # never group 0 either
    assert pick_owner(1000, 0, 0, 0) == (1000, DEDICATED_GID)
    assert pick_owner(0, 0, 1234, 0) == (1234, DEDICATED_GID)


def test_owner_note_says_what_to_do_and_only_for_the_dedicated_uid() -> None:
    assert owner_note(1234, 1235, "/p", 1234, 1235, 0o40755) is None
    note = owner_note(DEDICATED_UID, 50, "/srv/p", 0, 50, 0o40755)
    assert note and "cannot write it" in note and "chgrp -R 50 /srv/p" in note
    assert "chmod -R g+rwX /srv/p" in note and "never as root" in note
    assert "can write it" in (owner_note(DEDICATED_UID, 50, "/srv/p", 0, 50, 0o40775) or "")
    # group 0 is not given: only "other" permissions count then
    assert "cannot write" in (owner_note(DEDICATED_UID, DEDICATED_GID, "/p", 0, 0, 0o40775) or "")
    assert "can write it" in (owner_note(DEDICATED_UID, DEDICATED_GID, "/p", 0, 0, 0o40777) or "")


def test_passwd_and_group_name_the_worker_user() -> None:
    text = passwd_text(1234, 1235)
    assert "hal:x:1234:1235:hal-9000 agent:/home/hal:/bin/sh\n" in text
    assert text.startswith("root:x:0:0:") and text.endswith("\n")
    assert [line.split(":")[2] for line in text.splitlines()].count("1234") == 1
    assert "nobody" not in passwd_text(65534, 65534)  # one name per uid
    group = group_text(1235)
    assert group.endswith("hal:x:1235:\n") and "root:x:0:" in group
    assert group_text(5).count(":5:") == 1


def test_a_worker_is_on_the_internal_network_with_the_proxy_and_no_dns() -> None:
    # [worker].env cannot name another way out: the proxy's variables win
    cfg = WorkerConfig(env=("HTTPS_PROXY", "no_proxy", "FOO"))
    environ = {"HTTPS_PROXY": "http://evil:1", "no_proxy": "*", "FOO": "1"}
    kw = create_kwargs(worker_spec("/p", cfg, 1000, 1000, environ), ParentLayout())
    assert kw["network"] == WORKER_NETWORK and "network_mode" not in kw
    assert kw["dns"] == [GATEWAY] and kw["dns_opt"] == ["timeout:1", "attempts:1"]
    assert kw["environment"]["HTTPS_PROXY"] == f"http://{GATEWAY}:3128"
    assert kw["environment"]["https_proxy"] == kw["environment"]["http_proxy"]
    assert kw["environment"]["no_proxy"] == f"localhost,127.0.0.1,{GATEWAY}"
    assert kw["environment"]["FOO"] == "1"


def test_worker_network_is_retired_with_a_pointer_to_the_network_section() -> None:
    text = '[worker]\nnetwork = "host"\nmemory = "1g"\n'
    c = Collector("config.toml", text)
    values, _ = file_layer(parse_toml(text, "config.toml"), c)
    assert values == {("worker", "memory"): "1g"}
    (warning,) = c.warnings
    assert warning.startswith("config.toml:2:1: [worker].network is gone and ignored")
    assert "[network] mode" in warning
    c = Collector("environment", None)
    assert env_layer({"HAL9000_WORKER_NETWORK": "host"}, c) == {}
    assert "[network] mode" in c.warnings[0] and not c.errors
    assert not hasattr(Config().worker, "network")


def test_the_claude_binary_is_mounted_read_only_from_the_store_and_labelled() -> None:
    layout = ParentLayout()
    claude = ("2.1.332", "/data/claude/2.1.332/claude")
    spec = worker_spec("/home/u/p", WorkerConfig(), 1000, 1001, {}, layout=layout, claude=claude)
    kw = create_kwargs(spec, layout)
    assert kw["volumes"]["/data/claude/2.1.332/claude"] == {
        "bind": "/usr/local/bin/claude",
        "mode": "ro",
    }
    assert spec.labels[labels.CLAUDE] == "2.1.332"
    # a worker made before the store (no label) or on another version is not the same spec
    found = dict(spec.labels)
    assert same_spec({"Config": {"Labels": found, "User": "1000:1001"}}, spec)
    del found[labels.CLAUDE]
    assert not same_spec({"Config": {"Labels": found, "User": "1000:1001"}}, spec)
    none = worker_spec("/home/u/p", WorkerConfig(), 1000, 1001, {}, layout=layout)
    assert "/usr/local/bin/claude" not in {
        v["bind"] for v in create_kwargs(none, layout)["volumes"].values()
    }


def test_listed_ports_are_labelled_and_a_change_marks_the_worker_outdated() -> None:
    from parent_agent.core.model import to_worker
    from parent_agent.core.spec import template_hash

    spec = worker_spec("/home/u/p", WorkerConfig(ports=(3000, 5173)), 1000, 1000, {})
    assert spec.labels[labels.PORTS] == "3000,5173"
    assert to_worker({"Config": {"Labels": spec.labels}}).ports == (3000, 5173)
    assert labels.PORTS not in worker_spec("/home/u/p", WorkerConfig(), 1000, 1000, {}).labels
    # none listed: the template of workers made before ports existed (not outdated)
    assert template_hash(WorkerConfig()) == template_hash(WorkerConfig(ports=()))
    assert template_hash(WorkerConfig(ports=(3000,))) != template_hash(WorkerConfig())
    assert template_hash(WorkerConfig(ports=(3000,))) != template_hash(WorkerConfig(ports=(8080,)))


def test_grants_mount_the_agent_and_say_so_in_a_label_and_env() -> None:
    from hal_common.identity import Grants

    layout = ParentLayout()
    sock = "/run/hal9000-ssh-agent.sock"
    both = worker_spec(
        "/home/u/p", WorkerConfig(), 1000, 1001, {}, layout=layout, grants=Grants(True, True),
        ssh_agent=sock,
    )  # fmt: skip
    kw = create_kwargs(both, layout)
    assert kw["volumes"][sock] == {"bind": "/run/hal-ssh/agent.sock", "mode": "ro"}
    assert kw["environment"]["SSH_AUTH_SOCK"] == "/run/hal-ssh/agent.sock"
    assert kw["environment"]["GIT_CONFIG_SYSTEM"] == "/etc/hal/run/gitconfig"
    assert both.labels[labels.GRANTS] == "ssh-agent,github-token"
    # opted in but no socket in the parent: nothing bound, and the label says so
    nosock = worker_spec(
        "/home/u/p", WorkerConfig(), 1000, 1001, {}, layout=layout, grants=Grants(True, False)
    )
    kw = create_kwargs(nosock, layout)
    assert "SSH_AUTH_SOCK" not in kw["environment"] and nosock.labels[labels.GRANTS] == ""
    assert "/run/hal-ssh/agent.sock" not in {v["bind"] for v in kw["volumes"].values()}
    # a socket offered without the grant is never bound
    plain = worker_spec("/home/u/p", WorkerConfig(), 1000, 1001, {}, layout=layout, ssh_agent=sock)
    assert "SSH_AUTH_SOCK" not in create_kwargs(plain, layout)["environment"]
    # other grants: another spec (a stopped worker is made afresh)
    attrs = {"Config": {"Labels": dict(plain.labels), "User": "1000:1001"}}
    assert same_spec(attrs, plain) and not same_spec(attrs, both)
    # the user's [worker.env] cannot point git or ssh elsewhere
    env = WorkerConfig(env={"GIT_CONFIG_SYSTEM": "/tmp/mine", "SSH_AUTH_SOCK": "/tmp/s"})
    kw = create_kwargs(worker_spec("/p", env, 1, 1, {}, layout=layout), layout)
    assert kw["environment"]["GIT_CONFIG_SYSTEM"] == "/etc/hal/run/gitconfig"


def test_git_paths_are_mounted_onto_themselves_config_and_hooks_read_only() -> None:
    """A task's common .git read-write, its config, hooks and pointers read-only (a worker
    cannot plant a hook or an fsmonitor for the host's git); its labels name the task."""
    from hal_common import labels as lab

    rw = ("/r/app/.git",)
    ro = ("/r/app/.git/config", "/r/app/.git/hooks", "/r/app/.hal9000/tasks/fix/.git")
    spec = worker_spec(
        "/r/app/.hal9000/tasks/fix", WorkerConfig(), 1000, 1000, {}, git=(rw, ro),
        task=lab.task_labels("fix", "/r/app", "a" * 40),
    )  # fmt: skip
    vols = create_kwargs(spec, ParentLayout())["volumes"]
    assert vols["/r/app/.git"] == {"bind": "/r/app/.git", "mode": "rw"}
    for path in ro:
        assert vols[path] == {"bind": path, "mode": "ro"}
    assert spec.labels[lab.TASK] == "fix" and spec.labels[lab.REPO] == "/r/app"
    assert spec.labels[lab.BASE] == "a" * 40
    plain = create_kwargs(worker_spec("/r/p", WorkerConfig(), 1, 1, {}), ParentLayout())
    assert not any(".git" in v for v in plain["volumes"])
