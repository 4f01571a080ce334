"""What each worker's Claude is doing: its hook reports and its container's fate → a state.

Pure. The worker's Claude Code runs hal-9000's hooks (managed settings, so the user's own
hooks still run); each hook writes its event's JSON into that worker's own report directory,
the only one it can write; the parent reads it as untrusted input (`adapters/agent_reports`)
and the loop folds it in here. The engine's `start`/`die`/`oom` events give `starting` and
`exited`.

States:
- `starting`: the container started; Claude has not reported yet;
- `working`: a prompt was submitted, a tool runs, a subagent works;
- `waiting`: a permission prompt or a question: the user is needed;
- `idle`: the turn is done (or the session just began): Claude waits for a prompt;
- `exited`: the worker's process ended (`exit_code`, `oom`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

STARTING, WORKING, WAITING, IDLE, EXITED = "starting", "working", "waiting", "idle", "exited"
STATES = (STARTING, WORKING, WAITING, IDLE, EXITED)
NEEDS_YOU = frozenset({WAITING})

# the hook events hal-9000 installs (managed settings); each hook runs `hal-worker hook`
HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "Notification",
    "Stop",
    "SubagentStop",
    "SessionEnd",
)

MAX_REASON = 160  # characters of a reason kept (it is the worker's text: shown, never run)
_SESSION_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# Notification types that mean the agent waits for the user (`agent_needs_input`: auto
# mode's "can't check actions" screen, Claude Code 2.1.332)
WAITING_NOTIFICATIONS = frozenset({"permission_prompt", "elicitation_dialog", "agent_needs_input"})
# SessionStart's source → the reason shown: the agent is ready for a prompt
SESSION_STARTS = {
    "startup": "ready",
    "resume": "resumed",
    "clear": "cleared",
    "compact": "compacted",
}
# tools that ask the user something: running one means the agent waits for an answer
ASKING_TOOLS = frozenset({"AskUserQuestion"})


@dataclass(frozen=True)
class AgentState:
    """One worker's agent, as `ls --json` shows it under `agent` (see `to_json`)."""

    state: str
    since: datetime
    reason: str = ""
    session_id: str | None = None  # Claude's conversation id (from the hooks), for resume
    exit_code: int | None = None  # `exited` only
    oom: bool = False  # `exited` only: the kernel killed it for memory

    @property
    def needs_you(self) -> bool:
        return self.state in NEEDS_YOU

    def label(self) -> str:
        """`waiting`, `exited 137 (OOM)`: the dashboard's and `ls`'s short form."""
        if self.state == EXITED and self.exit_code is not None:
            return f"exited {self.exit_code}" + (" (OOM)" if self.oom else "")
        return self.state

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since.isoformat(),
            "reason": self.reason,
            "session_id": self.session_id,
            "exit_code": self.exit_code,
            "oom": self.oom,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AgentState:
        """ValueError on anything malformed (a file of ours, but maybe of another version)."""
        try:
            state = str(doc["state"])
            if state not in STATES:
                raise ValueError(f"unknown agent state {state!r}")
            code = doc.get("exit_code")
            return cls(
                state=state,
                since=datetime.fromisoformat(str(doc["since"])),
                reason=clean(doc.get("reason")),
                session_id=session_id(doc.get("session_id")),
                exit_code=int(code) if code is not None else None,
                oom=bool(doc.get("oom", False)),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed agent state: {e!r}") from None


def clean(text: object, limit: int = MAX_REASON) -> str:
    """A worker's text made safe to show and to pass on: printable characters only (no
    escape sequences, no newlines), at most `limit` of them."""
    if not isinstance(text, str):
        return ""
    out = "".join(c if c.isprintable() else " " for c in text[: limit * 4])
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def session_id(value: object) -> str | None:
    """Claude's session id when `value` is one (a UUID); anything else is None."""
    return value if isinstance(value, str) and _SESSION_ID.match(value) else None


@dataclass(frozen=True)
class HookEvent:
    """One hook report, already parsed and bounded (adapters/agent_reports)."""

    event: str  # one of HOOK_EVENTS
    session_id: str | None = None
    notification_type: str = ""  # Notification: permission_prompt, idle_prompt, ...
    message: str = ""  # Notification's message (cleaned)
    tool_name: str = ""  # PreToolUse / PostToolUse / PermissionRequest
    source: str = ""  # SessionStart: startup, resume, clear, compact
    end_reason: str = ""  # SessionEnd: clear, logout, prompt_input_exit, other

    @classmethod
    def from_payload(cls, doc: object) -> HookEvent | None:
        """The event in a hook's stdin JSON (a dict), or None when it is not one we know."""
        if not isinstance(doc, dict):
            return None
        event = doc.get("hook_event_name")
        if event not in HOOK_EVENTS:
            return None

        def text(key: str, limit: int = 64) -> str:
            return clean(doc.get(key), limit)

        return cls(
            event=str(event),
            session_id=session_id(doc.get("session_id")),
            notification_type=text("notification_type"),
            message=clean(doc.get("message")),
            tool_name=text("tool_name"),
            source=text("source"),
            end_reason=text("reason"),
        )


def on_hook(current: AgentState | None, ev: HookEvent, now: datetime) -> AgentState:
    """The state after hook event `ev`. The session id is kept from the latest event that
    carried one."""
    # SessionEnd names the id it was asked for, even one with no conversation (a failed
    # `--resume`): only events of a live session say which conversation to continue
    reported = ev.session_id if ev.event != "SessionEnd" else None
    sid = reported or (current.session_id if current else None)
    state, reason = _transition(current, ev)
    if current is not None and current.state == state and current.reason == reason:
        return replace(current, session_id=sid)  # no change: `since` stays
    return AgentState(state=state, since=now, reason=reason, session_id=sid)


def _transition(current: AgentState | None, ev: HookEvent) -> tuple[str, str]:
    match ev.event:
        case "SessionStart":
            return IDLE, SESSION_STARTS.get(ev.source, "ready")
        case "UserPromptSubmit":
            return WORKING, "prompt"
        case "PreToolUse" if ev.tool_name in ASKING_TOOLS:
            return WAITING, "a question"
        case "PreToolUse" | "PostToolUse":
            return WORKING, ev.tool_name
        case "PermissionRequest":
            return WAITING, f"permission: {ev.tool_name}" if ev.tool_name else "permission"
        case "Notification":
            kind = ev.notification_type
            if kind in WAITING_NOTIFICATIONS or (not kind and "permission" in ev.message.lower()):
                return WAITING, ev.message or "permission"
            # idle_prompt, auth_success, ...: no change of state
            return (current.state, current.reason) if current else (IDLE, "")
        case "Stop":
            return IDLE, "turn done"
        case "SubagentStop":
            return WORKING, "subagent done"
        case "SessionEnd":
            return EXITED, ev.end_reason or "session ended"
    return (current.state, current.reason) if current else (STARTING, "")


def on_start(current: AgentState | None, now: datetime) -> AgentState:
    """The worker's container started: Claude is starting (the conversation id is kept)."""
    return AgentState(STARTING, now, "", current.session_id if current else None)


def on_exit(current: AgentState | None, code: int, oom: bool, now: datetime) -> AgentState:
    """The worker's container ended with `code` (Claude's own status, 137 when killed)."""
    reason = "out of memory" if oom else ("stopped" if code in (0, 143) else "")
    sid = current.session_id if current else None
    return AgentState(EXITED, now, reason, sid, exit_code=code, oom=oom)


def unexpected(state: AgentState) -> bool:
    """An exit the user did not ask for: notify, and `on-failure` restarts it."""
    return state.state == EXITED and state.exit_code not in (None, 0, 143)


def need_you(states: Mapping[str, AgentState]) -> list[str]:
    """Sessions whose agent needs the user, oldest wait first."""
    waiting = [(s.since, name) for name, s in states.items() if s.needs_you]
    return [name for _, name in sorted(waiting)]
