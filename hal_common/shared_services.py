"""The shared services' specs (pure): the built-in ones, the user's tables over them, and
the MCP servers they give every worker. Shared by claudy (which builds and loads the
services image when a service uses it) and hal-agent (which runs them); see
parent_agent/services.py for the tables' keys."""

from __future__ import annotations

from typing import Any

SERVICES_IMAGE = "hal9000/services:latest"
MCP_PATH = "/mcp"

BUILTIN: dict[str, dict[str, Any]] = {
    "chromadb": {"image": SERVICES_IMAGE, "command": ["hal-service", "chroma"], "port": 8000,
                 "data": "chromadb", "token": True},
    "chroma-mcp": {"image": SERVICES_IMAGE, "command": ["hal-service", "chroma-mcp"],
                   "port": 8811, "mcp": True, "token": True},
    "memory-bank": {"image": SERVICES_IMAGE, "command": ["hal-service", "memory-bank"],
                    "port": 8812, "mcp": True, "data": "memory-bank"},
}  # fmt: skip


def effective(user: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The built-in services with the user's tables over them, then the user's own."""
    out = {name: {**table, **user.get(name, {})} for name, table in BUILTIN.items()}
    for name, table in user.items():
        if name not in BUILTIN:
            out[name] = dict(table)
    for table in out.values():
        if "stdio" in table and "command" not in table:
            table.setdefault("image", SERVICES_IMAGE)
            table["command"] = ["hal-service", "bridge", "--", *table["stdio"]]
            table["mcp"] = True
    chroma = out.get("chromadb", {})
    if "chroma-mcp" in out:  # Chroma's MCP server follows the server's port
        env = dict(out["chroma-mcp"].get("env") or {})
        env.setdefault("HAL_CHROMA_PORT", str(chroma.get("port", 8000)))
        out["chroma-mcp"]["env"] = env
    return out


def enabled(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: t for n, t in services.items() if t.get("enabled", True) is not False}


def running(user: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that should run: built-ins and the user's tables, without the ones off."""
    return enabled(effective(user))


def mcp_entries(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The `mcpServers` entries of `.claude.json` for the enabled MCP services."""
    out = {}
    for name, table in running(services).items():
        port = table.get("port")
        if table.get("mcp") and isinstance(port, int):
            path = str(table.get("mcp_path", MCP_PATH))
            out[name] = {"type": "http", "url": f"http://127.0.0.1:{port}{path}"}
    return out


def with_mcp(
    state: dict[str, Any], entries: dict[str, dict[str, str]], managed: list[str]
) -> dict[str, Any]:
    """Claude's state with our MCP servers set and our stale ones gone; the user's stay."""
    servers = {k: v for k, v in (state.get("mcpServers") or {}).items() if k not in managed}
    servers.update(entries)
    return {**state, "mcpServers": servers}


def images(services: dict[str, dict[str, Any]]) -> set[str]:
    """The images the enabled services run."""
    return {str(t["image"]) for t in running(services).values() if t.get("image")}
