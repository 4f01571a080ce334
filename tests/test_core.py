"""Pure unit tests: names, config, projects, specs, plans, attach argv. No engines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hal_common import labels
from hal_common.config import Config, WorkerConfig, parse_config, parse_memory
from hal_common.errors import ConfigError, UsageError
from hal_common.layout import ParentLayout
from hal_common.naming import container_name, session_name, slug
from hal_common.projects import check_roots, expand_roots, resolve_project
from hal_common.shared_services import SERVICES_IMAGE, ServiceSpec, images
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
    cmd = worker_window_command("hal9000-w-x", ParentLayout().inner_docker_host)
    assert cmd.startswith("exec docker -H unix:///run/hal9000/docker.sock exec -it")
    assert cmd.endswith("hal9000-w-x /usr/local/bin/hal-worker attach")


def test_uid_of_this_process_is_not_assumed() -> None:
    # host_owner falls back to the directory's owner when the host user is root.
    from parent_agent.app.sessions import host_owner

    st = os.stat(".")
    assert host_owner(".", ParentLayout(host_uid=0)) == pick_owner(0, 0, st.st_uid, st.st_gid)


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


def _services(text: str) -> tuple[ServiceSpec, ...]:
    return parse_config(text).services


def test_service_create_kwargs() -> None:
    from parent_agent.core.services import SPEC, create_kwargs

    spec = ServiceSpec("chroma", image="img:1", command=("run", "--x"), env=(("A", "b"),))
    kw = create_kwargs(spec, Path("/data/services"))
    assert kw["name"] == "hal9000-s-chroma" and kw["entrypoint"] == ["run"]
    assert kw["command"] == ["--x"] and kw["environment"] == {"A": "b"}
    assert kw["network_mode"] == "host" and kw["labels"][labels.ROLE] == "service"
    assert kw["volumes"] == {} and kw["cpu_shares"] == 256
    other = create_kwargs(ServiceSpec("chroma", image="img:2"), Path("/data/services"))
    assert other["labels"][SPEC] != kw["labels"][SPEC]
    (mb,) = [s for s in _services("") if s.name == "memory-bank"]
    kw = create_kwargs(mb, Path("/d"))
    assert kw["volumes"] == {"/d/memory-bank": {"bind": "/data", "mode": "rw"}}
    assert kw["environment"] == {"HAL_PORT": "8812"}
    assert kw["entrypoint"] == ["hal-service"] and kw["command"] == ["memory-bank"]
    (chroma,) = [s for s in _services("") if s.name == "chromadb"]
    assert "/d/chromadb.token" in create_kwargs(chroma, Path("/d"))["volumes"]


def test_service_plan_and_actions() -> None:
    from parent_agent.core.services import (
        CreateService,
        Found,
        RemoveService,
        StartService,
        actions,
        plan,
    )

    specs = _services('[services.memory-bank]\nenabled = false\n[services.web]\nimage = "w:1"\n')
    p = plan(specs, Path("/d"))
    assert p.names == ("chromadb", "chroma-mcp", "web")
    assert p.images == {SERVICES_IMAGE, "w:1"} and p.data_dirs == (Path("/d/chromadb"),)
    assert p.token == Path("/d/chromadb.token") and p.share_token
    assert [(w.name, w.port) for w in p.waits] == [("chroma-mcp", 8811)]
    digest = {w.name: w.digest for w in p.wanted}
    found = [
        Found("memory-bank", "running", "x", "id-mb"),  # disabled now
        Found("chromadb", "running", digest["chromadb"], "id-c"),  # as wanted
        Found("chroma-mcp", "exited", digest["chroma-mcp"], "id-cm"),  # stopped
        Found("web", "running", "old", "id-w"),  # changed
    ]
    todo = actions(p, found)
    assert todo[0] == RemoveService(
        "memory-bank", "id-mb", "service memory-bank stopped (disabled)"
    )
    assert todo[1] == StartService("chroma-mcp", "id-cm")
    assert todo[2] == RemoveService("web", "id-w", "service web changed; recreating")
    assert isinstance(todo[3], CreateService) and todo[3].wanted.name == "web"
    assert len(todo) == 4
    assert actions(p, []) == [CreateService(w) for w in p.wanted]


def test_builtin_services_and_the_users_tables_over_them() -> None:
    from parent_agent.core.services import mcp_entries, with_mcp

    eff = _services("")
    assert [s.name for s in eff] == ["chromadb", "chroma-mcp", "memory-bank"]
    assert eff == Config().services
    assert images(eff) == {SERVICES_IMAGE}
    assert mcp_entries(eff) == {
        "chroma-mcp": {"type": "http", "url": "http://127.0.0.1:8811/mcp"},
        "memory-bank": {"type": "http", "url": "http://127.0.0.1:8812/mcp"},
    }
    # the user moves chromadb's port, disables memory-bank, adds a stdio MCP server
    eff = _services(
        "[services.chromadb]\nport = 9000\n[services.memory-bank]\nenabled = false\n"
        '[services.fetch]\nstdio = ["uvx", "mcp-server-fetch"]\nport = 8820\n'
    )
    by = {s.name: s for s in eff}
    assert by["chroma-mcp"].environment["HAL_CHROMA_PORT"] == "9000"
    assert by["chromadb"].image == SERVICES_IMAGE  # the built-in's keys stay
    assert by["fetch"].command == ("hal-service", "bridge", "--", "uvx", "mcp-server-fetch")
    assert by["fetch"].image == SERVICES_IMAGE and by["fetch"].mcp
    assert set(mcp_entries(eff)) == {"chroma-mcp", "fetch"}
    # registration keeps the user's own servers and drops ours that went away
    state = {"mcpServers": {"mine": {"command": "x"}, "memory-bank": {"url": "old"}}}
    new = with_mcp(state, mcp_entries(eff), managed=["memory-bank", "chroma-mcp"])
    assert set(new["mcpServers"]) == {"mine", "chroma-mcp", "fetch"}


def test_service_health_says_why() -> None:
    from parent_agent.core.services import TOP, states

    specs = _services("[services.memory-bank]\nenabled = false\n")
    running = {"State": {"Running": True}, "RestartCount": 0}
    crashed = {"State": {"Running": False, "ExitCode": 137}, "RestartCount": 5}
    found = {s.name: s for s in states(
        specs, {"chromadb": running, "chroma-mcp": crashed},
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
    found = {s.name: s for s in states(Config().services,
                                       {"chroma-mcp": alive, "memory-bank": orphan},
                                       probe=lambda port: True)}  # fmt: skip
    assert found["chroma-mcp"].ok
    assert found["memory-bank"].state == "broken" and "--restart" in found["memory-bank"].detail
    lonely = states(Config().services, {"chromadb": running}, probe=lambda port: False)
    assert [s.state for s in lonely] == ["starting", "missing", "missing"]


def test_turning_a_builtin_service_off_or_on_is_a_change() -> None:
    from hal_common.config_diff import diff_services

    off = _services("[services.memory-bank]\nenabled = false\n")
    default = Config().services
    assert diff_services(default, off).disabled == ("memory-bank",)
    assert diff_services(off, default).enabled == ("memory-bank",)
    moved = _services("[services.chromadb]\nport = 9000\n")
    assert diff_services(default, moved).changed == ("chroma-mcp", "chromadb")
