"""The shared services' create arguments and their health, said with the reason."""

from __future__ import annotations

import pytest

from hal_common import labels


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
