"""The built-in shared services and the user's tables over them: the specs at load, their
images, and the MCP entries registered for them."""

from __future__ import annotations

from hal_common.config import Config, parse_config
from hal_common.shared_services import SERVICES_IMAGE, ServiceSpec, images


def _services(text: str) -> tuple[ServiceSpec, ...]:
    return parse_config(text).services


def test_builtin_services_and_the_users_tables_over_them() -> None:
    from parent_agent.core.services import mcp_entries, with_mcp

    eff = _services("")
    assert [s.name for s in eff] == ["chromadb", "chroma-mcp", "memory-bank"]
    assert eff == Config().services
    assert images(eff) == {SERVICES_IMAGE}
    bearer = {"Authorization": "Bearer t"}
    assert mcp_entries(eff, "t") == {  # through the gates on the workers' gateway
        "chroma-mcp": {"type": "http", "url": "http://10.213.213.1:8811/mcp", "headers": bearer},
        "memory-bank": {"type": "http", "url": "http://10.213.213.1:8812/mcp", "headers": bearer},
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
    assert set(mcp_entries(eff, "t")) == {"chroma-mcp", "fetch"}
    # registration keeps the user's own servers and drops ours that went away
    state = {"mcpServers": {"mine": {"command": "x"}, "memory-bank": {"url": "old"}}}
    new = with_mcp(state, mcp_entries(eff, "t"), managed=["memory-bank", "chroma-mcp"])
    assert set(new["mcpServers"]) == {"mine", "chroma-mcp", "fetch"}
