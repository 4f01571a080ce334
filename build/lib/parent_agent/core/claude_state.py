"""A worker's private Claude state (`.claude.json`), as hal-9000 wants it (pure).

The worker's own file wins over the base state (the host's keys `claudy sync` brought, kept
in the shared home's `.claude.json`); then what hal-9000 manages is set on top: onboarding
done, the project trusted, the shared MCP servers, and an imported API key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hal_common.layout import WORKER_BIN
from parent_agent.core.agent_state import HOOK_EVENTS
from parent_agent.core.services import with_mcp

# what of the base never goes into a worker's state as such
PER_WORKER = ("projects", "primaryApiKey", "mcpServers")

# the shared config workers see read-only, mounted over their private state: files, dirs
SHARED_FILES = ("settings.json", "CLAUDE.md")
SHARED_DIRS = ("agents", "commands", "skills", "plugins")
CREDENTIALS = ".credentials.json"  # the one shared writable file
EMPTY_CREDENTIALS = b"{}\n"  # Claude Code reads `{}` as "no OAuth login" (not as corrupt)
PLACEHOLDERS: dict[str, bytes] = {"settings.json": b"{}\n", "CLAUDE.md": b""}

# the hook events whose matcher is a tool name ("*": every tool); the others take none
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse", "PermissionRequest"})
HOOK_COMMAND = f"{WORKER_BIN} hook"  # writes the event's JSON into the worker's report dir
HOOK_TIMEOUT_S = 5  # it returns at once; Claude Code kills it after this


def hook_settings(events: Iterable[str] = HOOK_EVENTS) -> dict[str, Any]:
    """The `hooks` of the managed settings: `hal-worker hook` on each of `events`. Managed
    hooks run beside the user's own (settings, project, plugins): `allowManagedHooksOnly`
    is never set."""
    hook = {"type": "command", "command": HOOK_COMMAND, "timeout": HOOK_TIMEOUT_S}
    out: dict[str, Any] = {}
    for event in events:
        group: dict[str, Any] = {"hooks": [dict(hook)]}
        if event in TOOL_EVENTS:
            group = {"matcher": "*", **group}
        out[event] = [group]
    return out


# hal-9000's managed settings (/etc/claude-code/managed-settings.json): what it enforces
MANAGED_SETTINGS: dict[str, Any] = {
    # the binary is pinned in the image; an agent must not swap it for another
    "env": {"DISABLE_AUTOUPDATER": "1"},
    # each worker's agent state (core/agent_state) comes from these
    "hooks": hook_settings(),
}


def grant(state: Mapping[str, Any], project: str) -> dict[str, Any]:
    """Claude's state with onboarding done and `project` trusted (a new dict)."""
    projects = dict(state.get("projects") or {})
    entry = dict(projects.get(project) or {})
    entry["hasTrustDialogAccepted"] = True
    projects[project] = entry
    return {**state, "hasCompletedOnboarding": True, "projects": projects}


def seeded(base: Mapping[str, Any], project: str | None) -> dict[str, Any]:
    """A new worker's first state: the base's keys, its MCP servers (the user's own
    included), and of its per-project entries only this project's."""
    state = {k: v for k, v in base.items() if k not in ("projects", "primaryApiKey")}
    entry = (base.get("projects") or {}).get(project) if project else None
    if isinstance(entry, dict):
        state["projects"] = {project: entry}
    return state


def worker_state(
    private: Mapping[str, Any] | None,
    base: Mapping[str, Any],
    project: str | None,
    mcp: Mapping[str, Mapping[str, Any]] | None,
    managed: Iterable[str],
    api_key: str | bool | None,
) -> dict[str, Any]:
    """The worker's `.claude.json`: its own (None: none yet, seeded from the base) over the
    base's keys, then onboarding, `project`'s trust (None: no change), the MCP servers
    (`mcp` None: no change), and `api_key` (a str: set; False: removed; None: no change)."""
    mine = dict(private) if private is not None else seeded(base, project)
    state = {**{k: v for k, v in base.items() if k not in PER_WORKER}, **mine}
    if project is not None:
        state = grant(state, project)
    if mcp is not None:
        state = with_mcp(state, mcp, managed)
    if isinstance(api_key, str):
        state["primaryApiKey"] = api_key
    elif api_key is False:
        state.pop("primaryApiKey", None)
    return state
