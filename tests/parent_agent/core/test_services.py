"""The shared services' pure core: create arguments, the plan and the actions that reach it,
and their health, said with the reason."""

from __future__ import annotations

from pathlib import Path

from hal_common import labels
from hal_common.config import Config, parse_config
from hal_common.shared_services import SERVICES_IMAGE, ServiceSpec


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
    assert "/d/mcp.token" in create_kwargs(chroma, Path("/d"))["volumes"]


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
    assert p.token == Path("/d/mcp.token") and p.share_token
    assert p.gates == {8000: 8000, 8811: 8811}  # enabled, with a port ("web" has none)
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


def test_service_health_says_why() -> None:
    from parent_agent.core.services import TOP, states

    specs = _services("[services.memory-bank]\nenabled = false\n")
    running = {"State": {"Running": True}, "RestartCount": 0}
    crashed = {"State": {"Running": False, "ExitCode": 137}, "RestartCount": 5}
    found = {
        s.name: s
        for s in states(
            specs, {"chromadb": running, "chroma-mcp": crashed}, probe=lambda port: port == 8000
        )
    }
    assert found["chromadb"].ok and found["chromadb"].detail == ":8000"
    assert not found["chroma-mcp"].ok
    assert found["chroma-mcp"].detail == "exited 137, 5 restarts"
    assert found["memory-bank"].state == "disabled"
    bridge = "/opt/hal-services/bin/python3 /opt/hal-services/bin/mcp-proxy --port 8811"
    server = "/opt/hal-services/bin/python3 /opt/hal-services/bin/chroma-mcp --client-type http"
    init = "/sbin/docker-init -- /usr/local/bin/hal-service chroma-mcp"
    alive = {**running, TOP: [init, bridge, server]}
    orphan = {**running, TOP: [init, bridge]}  # the bridge outlived its stdio server
    found = {
        s.name: s
        for s in states(
            Config().services, {"chroma-mcp": alive, "memory-bank": orphan}, probe=lambda port: True
        )
    }
    assert found["chroma-mcp"].ok
    assert found["memory-bank"].state == "broken" and "--restart" in found["memory-bank"].detail
    lonely = states(Config().services, {"chromadb": running}, probe=lambda port: False)
    assert [s.state for s in lonely] == ["starting", "missing", "missing"]
    # no container because the image is not there yet: what `waiting` says, not an error
    wait = states(
        Config().services,
        {"chromadb": running},
        probe=lambda port: False,
        waiting=lambda image: ("waiting", f"waiting for image {image}"),
    )
    assert [s.state for s in wait] == ["starting", "waiting", "waiting"]
    assert wait[1].detail == "waiting for image hal9000/services:latest" and not wait[1].ok


def test_workers_are_told_the_gates_with_the_bearer_token() -> None:
    from parent_agent.core.services import plan

    specs = _services('[services.web]\nimage = "w:1"\nport = 9000\nmcp = true\nmcp_path = "/x"\n')
    p = plan(specs, Path("/d"), "tok")
    bearer = {"Authorization": "Bearer tok"}
    assert p.mcp == {
        "chroma-mcp": {"type": "http", "url": "http://10.213.213.1:8811/mcp", "headers": bearer},
        "memory-bank": {"type": "http", "url": "http://10.213.213.1:8812/mcp", "headers": bearer},
        "web": {"type": "http", "url": "http://10.213.213.1:9000/x", "headers": bearer},
    }
    assert p.gates == {8000: 8000, 8811: 8811, 8812: 8812, 9000: 9000}
    # health and the spawn's wait stay on 127.0.0.1 (the services' own address)
    assert {w.port for w in p.waits} == {8811, 8812, 9000}
    assert (
        plan(
            _services(
                "[services.chromadb]\nenabled = false\n[services.chroma-mcp]\n"
                "enabled = false\n[services.memory-bank]\nenabled = false\n"
            ),
            Path("/d"),
        ).gates
        == {}
    )


def test_a_service_created_but_not_yet_started_is_starting_not_exited() -> None:
    """The reconcile creates, then starts: in between, inspect says Running false, exit 0
    (CI's first-run e2e saw 'exited' there). A create whose start failed keeps its error."""
    from parent_agent.core.services import states

    between = {"State": {"Status": "created", "Running": False, "ExitCode": 0}}
    failed = {"State": {"Status": "created", "Running": False, "Error": "port is in use"}}
    found = states(
        Config().services, {"chromadb": between, "chroma-mcp": failed}, probe=lambda port: True
    )
    assert [(s.state, s.ok) for s in found[:2]] == [("starting", False), ("exited", False)]
    assert found[0].detail == "created, not started yet"
    assert "port is in use" in found[1].detail
