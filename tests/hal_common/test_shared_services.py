"""The built-in shared services and the user's tables over them."""

from __future__ import annotations

from typing import Any


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
