"""Pure unit tests: names, config, projects, specs, plans, attach argv. No engines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hal_common import labels
from hal_common.config import Config, WorkerConfig, parse_config, parse_memory
from hal_common.errors import ConfigError, UsageError
from hal_common.naming import container_name, session_name, slug
from hal_common.projects import check_roots, expand_roots, resolve_project
from host_shim.core.build_context import recipes
from host_shim.core.parent_spec import HostUser, parent_kwargs, resolve_security, volume_names
from parent_agent.core.model import Worker
from parent_agent.core.reconcile import EnsureWindow, KillWindow, plan
from parent_agent.core.spec import create_kwargs, pick_owner, worker_spec
from parent_agent.core.tmux import attach_argv, worker_window_command


def test_session_name_is_deterministic_and_hashes_the_whole_path() -> None:
    a = session_name("/home/u/src/My Project")
    assert a == session_name("/home/u/src/My Project")
    assert a.startswith("my-project-") and len(a.rsplit("-", 1)[1]) == 8
    assert a != session_name("/home/u/other/My Project")
    assert container_name(a) == f"hal9000-w-{a}"


@pytest.mark.parametrize(
    ("text", "want"),
    [("Foo_Bar", "foo-bar"), ("...", "project"), ("ünïcode", "n-code"), ("a" * 40, "a" * 24)],
)
def test_slug(text: str, want: str) -> None:
    assert slug(text) == want


def test_config_defaults_without_a_file(tmp_path: Path) -> None:
    from hal_common.config import load_config

    assert load_config(tmp_path / "absent.toml") == Config()


def test_config_parses_values_and_warns_on_unknown_keys() -> None:
    cfg = parse_config('[worker]\nmemory = "2g"\ncpus = 1\nbogus = 3\n[nope]\nx = 1\n')
    assert cfg.worker.memory == "2g" and cfg.worker.cpus == 1.0
    assert any("[worker].bogus" in w for w in cfg.warnings)
    assert any("[nope]" in w for w in cfg.warnings)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[worker\n", ":1:"),
        ('[worker]\ncpus = "two"\n', "[worker].cpus must be a number"),
        ("[worker]\ncommand = []\n", "must not be empty"),
        ('[parent]\nsecurity = "yolo"\n', "expected one of auto, caps"),
        ('[worker]\nmemory = "lots"\n', "not a memory size"),
        ("[worker]\npids = true\n", "must be an integer"),
    ],
)
def test_config_errors_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert needle in str(e.value)


def test_parse_memory() -> None:
    assert parse_memory("512m") == 512 << 20
    assert parse_memory("4g") == 4 << 30
    assert parse_memory("") == 0
    with pytest.raises(ValueError, match="not a memory size"):
        parse_memory("4 gigs")


def test_resolve_project_rules(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proj = root / "proj"
    proj.mkdir(parents=True)
    (root / "file").write_text("x")
    (root / "link").symlink_to(proj)
    roots = expand_roots((str(root),), "/nowhere")
    assert resolve_project(str(root / "link"), roots) == str(proj)
    for bad, needle in [
        (root / "missing", "no such directory"),
        (root / "file", "not a directory"),
        (root, "is a root itself"),
        (tmp_path, "not under a configured root"),
        (Path("/etc"), "system directory"),
    ]:
        with pytest.raises(UsageError, match=needle):
            resolve_project(str(bad), roots)


def test_roots_expand_home_and_refuse_system_dirs() -> None:
    assert expand_roots(("~", "~/src"), "/home/u") == ("/home/u", "/home/u/src")
    with pytest.raises(UsageError, match="system directory"):
        check_roots(("/usr",))


def test_worker_spec_and_create_kwargs() -> None:
    cfg = WorkerConfig(memory="1g", cpus=1.5, pids=100, env=("FOO", "MISSING"))
    spec = worker_spec("/home/u/p", cfg, 1000, 1001, environ={"FOO": "1", "SECRET": "x"})
    kw = create_kwargs(spec, "/config/claude")
    assert kw["name"] == container_name(session_name("/home/u/p"))
    assert kw["user"] == "1000:1001" and kw["working_dir"] == "/home/u/p"
    assert kw["volumes"]["/home/u/p"] == {"bind": "/home/u/p", "mode": "rw"}
    assert kw["volumes"]["/config/claude"]["bind"] == "/home/hal/.claude"
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


def test_parent_kwargs_caps_mode_mounts_roots_at_the_same_path() -> None:
    kw = parent_kwargs(
        Config(), ("/home/u",), "/home/u/.config/hal9000", HostUser(1000, 1000), "caps"
    )
    assert kw["volumes"]["/home/u"] == {"bind": "/home/u", "mode": "rw"}
    assert kw["volumes"]["/home/u/.config/hal9000"]["bind"] == "/config/hal9000"
    assert kw["volumes"]["/sys/fs/cgroup"]["mode"] == "rw"
    assert set(volume_names("hal9000-parent").values()) <= set(kw["volumes"])
    assert "privileged" not in kw and "SYS_ADMIN" in kw["cap_add"]
    assert kw["labels"][labels.ROLE] == labels.ROLE_PARENT
    assert parent_kwargs(Config(), (), "/c", HostUser(1, 1), "privileged")["privileged"] is True


def test_resolve_security() -> None:
    assert resolve_security("auto", {"runc"}) == "caps"
    assert resolve_security("auto", {"runc", "sysbox-runc"}) == "sysbox"
    assert resolve_security("privileged", {"sysbox-runc"}) == "privileged"


def test_recipes_follow_the_worker_image() -> None:
    cfg = parse_config('[worker]\nimage = "hal9000/worker:standard"\n')
    assert [(r.dockerfile, r.target) for r in recipes(cfg)] == [
        ("Dockerfile.worker", "standard"),
        ("Dockerfile.parent", None),
        ("Dockerfile.services", None),  # the built-in services run from it
    ]
    custom = parse_config('[worker]\nimage = "me/mine:1"\n')
    assert [r.dockerfile for r in recipes(custom)] == ["Dockerfile.parent", "Dockerfile.services"]
    off = "".join(f"[services.{n}]\nenabled = false\n" for n in ("chromadb", "chroma-mcp",
                                                                  "memory-bank"))  # fmt: skip
    assert [r.dockerfile for r in recipes(parse_config(off))][-1] == "Dockerfile.parent"


def _w(name: str, state: str) -> Worker:
    return Worker(name, f"hal9000-w-{name}", f"/p/{name}", "img", state, None, None)


def test_plan_removes_windows_of_stopped_workers_and_restores_on_fresh_session() -> None:
    workers = [_w("a", "running"), _w("b", "exited"), _w("c", "running")]
    assert plan(workers, {"a", "b"}, session_fresh=False) == [KillWindow("b")]
    assert plan(workers, set(), session_fresh=True) == [
        EnsureWindow("a", "hal9000-w-a"),
        EnsureWindow("c", "hal9000-w-c"),
    ]
    assert plan(workers, {"a", "c"}, session_fresh=True) == []


def test_attach_argv_groups_a_session_per_terminal_and_targets_exactly() -> None:
    argv = attach_argv(Path("/run/x.sock"), "proj-12345678", inside_tmux=False)
    assert argv[:3] == ["tmux", "-S", "/run/x.sock"]
    assert argv[3:6] == ["new-session", "-t", "=hal"]
    assert argv[-2:] == ["-t", ":=proj-12345678"]
    inside = attach_argv(Path("/s"), "w", inside_tmux=True)
    assert inside[3:] == ["select-window", "-t", ":=w"]


def test_window_command_execs_into_the_worker() -> None:
    cmd = worker_window_command("hal9000-w-x")
    assert cmd.startswith("exec docker -H unix:///run/hal9000/docker.sock exec -it")
    assert cmd.endswith("hal9000-w-x /usr/local/bin/hal-worker attach")


def test_uid_of_this_process_is_not_assumed() -> None:
    # host_owner falls back to the directory's owner when the host user is root.
    from parent_agent.app.sessions import host_owner

    st = os.stat(".")
    assert host_owner(".", {"HAL_HOST_UID": "0"}) == pick_owner(0, 0, st.st_uid, st.st_gid)


def test_grant_marks_onboarding_and_trust_and_keeps_the_rest() -> None:
    from parent_agent.app.sessions import grant

    state: dict[str, Any] = {"theme": "dark", "projects": {"/a": {"allowedTools": ["x"]}}}
    out = grant(state, "/a")
    assert out["theme"] == "dark" and out["hasCompletedOnboarding"] is True
    assert out["projects"]["/a"] == {"allowedTools": ["x"], "hasTrustDialogAccepted": True}
    assert state["projects"]["/a"] == {"allowedTools": ["x"]}  # the input is not changed
    assert grant(out, "/a") == out


def test_probe_parsing_and_when_the_fast_path_may_attach() -> None:
    from host_shim.core.fastpath import attachable, parse_probe

    found = parse_probe(0, "sha256:abc\ntrue\nproj-1\nother-2\n")
    assert found.ready and found.inner_image == "sha256:abc" and found.worker_running
    assert found.windows == {"proj-1", "other-2"}
    assert attachable(found, "sha256:abc", "proj-1", need_window=True)
    assert not attachable(found, "sha256:new", "proj-1", need_window=True)  # image to load
    assert not attachable(found, "sha256:abc", "proj-9", need_window=True)  # no window yet
    assert attachable(found, "sha256:abc", "proj-9", need_window=False) is True
    assert parse_probe(3, "") == parse_probe(0, "") and not parse_probe(3, "").ready
    stopped = parse_probe(0, "none\nabsent\n")
    assert stopped.inner_image == "" and not stopped.worker_running


def test_source_hash_follows_what_each_image_is_built_from(tmp_path: Path) -> None:
    from host_shim.core.build_context import Recipe, source_hash

    for name in ("Dockerfile.worker", "Dockerfile.parent", "pyproject.toml", "README.md"):
        (tmp_path / name).write_text(name)
    for d in ("images", "hal_common", "hal_io", "parent_agent", "host_shim"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.py").write_text("x = 1\n")
    for f in ("hal-worker", "worker-tmux.conf", "hal-service"):
        (tmp_path / "images" / f).write_text(f)
    worker = Recipe("w", "Dockerfile.worker", "minimal")
    parent = Recipe("p", "Dockerfile.parent", None)
    w0, p0 = source_hash(tmp_path, worker), source_hash(tmp_path, parent)
    assert source_hash(tmp_path, Recipe("w", "Dockerfile.worker", "standard")) != w0
    (tmp_path / "parent_agent" / "a.py").write_text("x = 2\n")
    assert source_hash(tmp_path, parent) != p0 and source_hash(tmp_path, worker) == w0
    (tmp_path / "README.md").write_text("edited")  # docs alone never force a rebuild
    (tmp_path / "host_shim" / "__pycache__").mkdir()
    (tmp_path / "host_shim" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    p1 = source_hash(tmp_path, parent)
    (tmp_path / "images" / "hal-service").write_text("#!/bin/sh\n")  # the services image's
    assert source_hash(tmp_path, worker) == w0
    (tmp_path / "images" / "hal-worker").write_text("#!/bin/sh\n")
    assert source_hash(tmp_path, parent) == p1 and source_hash(tmp_path, worker) != w0


def test_claudy_with_a_broken_config_says_where_and_changes_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "hal9000"
    cfg.mkdir()
    (cfg / "config.toml").write_text('[worker]\nmemory = "2g"\ncpus = "many"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "DOCKER_HOST": "unix:///nonexistent"}
    res = subprocess.run([sys.executable, "-m", "host_shim", "-d", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "config.toml:3:" in res.stderr and "[worker].cpus" in res.stderr
    assert (cfg / "config.toml").read_text().endswith('cpus = "many"\n')


def test_service_kwargs() -> None:
    from hal_common.shared_services import enabled
    from parent_agent.adapters.services import service_kwargs

    kw = service_kwargs("chroma", {"image": "img:1", "command": ["run", "--x"], "env": {"A": "b"}})
    assert kw["name"] == "hal9000-s-chroma" and kw["entrypoint"] == ["run"]
    assert kw["command"] == ["--x"] and kw["environment"] == {"A": "b"}
    assert kw["network_mode"] == "host" and kw["labels"][labels.ROLE] == "service"
    other = service_kwargs("chroma", {"image": "img:2"})
    assert other["labels"]["dev.hal9000.spec"] != kw["labels"]["dev.hal9000.spec"]
    with pytest.raises(ValueError, match="needs an image"):
        service_kwargs("x", {})
    assert set(enabled({"a": {}, "b": {"enabled": False}, "c": {"enabled": True}})) == {"a", "c"}
    with pytest.raises(ValueError, match="needs a port"):
        service_kwargs("m", {"image": "i", "mcp": True})
    with pytest.raises(ValueError, match="port number"):
        service_kwargs("m", {"image": "i", "port": 70000})


def test_builtin_services_and_the_users_tables_over_them() -> None:
    from hal_common.shared_services import SERVICES_IMAGE, effective, images, mcp_entries, with_mcp

    eff = effective({})
    assert set(eff) == {"chromadb", "chroma-mcp", "memory-bank"}
    assert images({}) == {SERVICES_IMAGE}
    assert mcp_entries({}) == {
        "chroma-mcp": {"type": "http", "url": "http://127.0.0.1:8811/mcp"},
        "memory-bank": {"type": "http", "url": "http://127.0.0.1:8812/mcp"},
    }
    # the user moves chromadb's port, disables memory-bank, adds a stdio MCP server
    user: dict[str, dict[str, Any]] = {
        "chromadb": {"port": 9000},
        "memory-bank": {"enabled": False},
        "fetch": {"stdio": ["uvx", "mcp-server-fetch"], "port": 8820},
    }
    eff = effective(user)
    assert eff["chroma-mcp"]["env"]["HAL_CHROMA_PORT"] == "9000"
    assert eff["fetch"]["command"] == ["hal-service", "bridge", "--", "uvx", "mcp-server-fetch"]
    assert set(mcp_entries(user)) == {"chroma-mcp", "fetch"}
    assert user["fetch"] == {"stdio": ["uvx", "mcp-server-fetch"], "port": 8820}  # not mutated
    # registration keeps the user's own servers and drops ours that went away
    state = {"mcpServers": {"mine": {"command": "x"}, "memory-bank": {"url": "old"}}}
    new = with_mcp(state, mcp_entries(user), managed=["memory-bank", "chroma-mcp"])
    assert set(new["mcpServers"]) == {"mine", "chroma-mcp", "fetch"}


def test_service_health_says_why() -> None:
    from parent_agent.adapters.services import TOP, states

    running = {"State": {"Running": True}, "RestartCount": 0}
    crashed = {"State": {"Running": False, "ExitCode": 137}, "RestartCount": 5}
    found = {s.name: s for s in states(
        {"memory-bank": {"enabled": False}},
        {"chromadb": running, "chroma-mcp": crashed},
        probe=lambda port: port == 8000)}  # fmt: skip
    assert found["chromadb"].ok and found["chromadb"].detail == ":8000"
    assert not found["chroma-mcp"].ok
    assert found["chroma-mcp"].detail == "exited 137, 5 restarts"
    assert found["memory-bank"].state == "disabled"
    bridge = "/opt/hal-services/bin/python3 /opt/hal-services/bin/mcp-proxy --port 8811"
    server = "/opt/hal-services/bin/python3 /opt/hal-services/bin/chroma-mcp --client-type http"
    init = "/sbin/docker-init -- /usr/local/bin/hal-service chroma-mcp"
    alive = {**running, TOP: [init, bridge, server]}
    orphan = {**running, TOP: [init, bridge]}  # the bridge outlived its stdio server
    found = {s.name: s for s in states({}, {"chroma-mcp": alive, "memory-bank": orphan},
                                       probe=lambda port: True)}  # fmt: skip
    assert found["chroma-mcp"].ok
    assert found["memory-bank"].state == "broken" and "--restart" in found["memory-bank"].detail
    lonely = states({}, {"chromadb": running}, probe=lambda port: False)
    assert [s.state for s in lonely] == ["starting", "missing", "missing"]


def test_turning_a_builtin_service_off_or_on_is_a_change() -> None:
    from hal_common.config_diff import diff_services

    off = {"memory-bank": {"enabled": False}}
    assert diff_services({}, off).disabled == ("memory-bank",)
    assert diff_services(off, {}).enabled == ("memory-bank",)
    assert diff_services({}, {"chromadb": {"port": 9000}}).changed == ("chroma-mcp", "chromadb")
