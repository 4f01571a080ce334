"""What crosses between `claudy` and `hal-agent`: the JSON replies, the sync archive, tmux names.

`claudy` asks the parent through `docker exec hal-agent …`; each JSON reply it reads is a
frozen dataclass here, written by `to_json()`/`dumps()` on the parent's side and read by
`loads()`/`from_json()` on the host's, which say what is wrong with a reply that does not fit
(a HalError, never a KeyError three calls later). The names both sides must agree on (the
tmux session and window option, the detach keys, the members of the sync archive) are here
too, once.

Pure: no docker, click, rich or libtmux.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from hal_common.errors import HalError

# Bumped when a reply changes in a way an older reader cannot take (adding a field is not).
PROTOCOL_VERSION = 1

# The parent's tmux: one session of windows, one window per worker (marked by the option).
TMUX_SESSION = "hal"
SESSION_TARGET = f"={TMUX_SESSION}"  # exact: never a prefix match
DASHBOARD_WINDOW = "dashboard"
WINDOW_OPTION = "@hal-session"  # window option: the worker session a window shows
DETACH_KEYS = "ctrl-],ctrl-]"  # docker exec's own default (ctrl-p,ctrl-q) would eat ctrl-p

# The parent container's state as `claudy status` shows it: Docker's, or absent.
PARENT_ABSENT = "absent"
PARENT_RUNNING = "running"
PARENT_RESTARTING = "restarting"
PARENT_STOPPED = ("exited", "created")  # nothing runs in it: it may be made anew

# The archive `claudy sync` sends to `hal-agent sync`: files and trees of the Claude home,
# plus one member holding a few keys of the host's `.claude.json`.
SYNC_FILES = ("settings.json", "CLAUDE.md")
SYNC_DIRS = ("agents", "commands", "skills", "plugins")
SYNC_TOPS = frozenset((*SYNC_FILES, *SYNC_DIRS))  # what a member's first part may be
SYNC_HOST_STATE = ".hal-host-state.json"  # the member carrying SYNC_STATE_KEYS
SYNC_STATE_KEYS = ("oauthAccount", "userID", "theme", "editorMode", "lastOnboardingVersion")

_HINT = "the parent may run another hal-9000: `claudy down && claudy` recreates it"


def _bad(what: str, detail: str) -> HalError:
    return HalError(f"the parent's reply to `{what}` is not understood: {detail}", hint=_HINT)


_R = TypeVar("_R")


def _rows(doc: object, what: str, row: Callable[[object, str], _R]) -> tuple[_R, ...]:
    """The rows of a reply that is a JSON list, each read by `row` (told its index)."""
    if not isinstance(doc, list):
        raise _bad(what, "the reply is not a list")
    return tuple(row(r, f"[{i}].") for i, r in enumerate(doc))


def _loads(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except ValueError as e:
        raise _bad(what, f"not JSON ({e})") from None


class _Fields:
    """Typed reads of one JSON object; each failure names the reply and the field."""

    def __init__(self, doc: object, what: str, where: str = "") -> None:
        if not isinstance(doc, dict):
            raise _bad(what, f"{where.rstrip('.') or 'the reply'} is not an object")
        self.doc: dict[str, Any] = doc
        self.what, self.where = what, where

    def _get(self, key: str, types: tuple[type, ...], optional: bool, default: Any) -> Any:
        if key not in self.doc:
            if optional:
                return default
            raise _bad(self.what, f"{self.where}{key} is missing")
        value = self.doc[key]
        if value is None and optional:
            return None
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            raise _bad(self.what, f"{self.where}{key} is {value!r}, not {names}")
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, (str,), False, None))

    def opt_text(self, key: str) -> str | None:
        value: str | None = self._get(key, (str,), True, None)
        return value

    def integer(self, key: str) -> int:
        return int(self._get(key, (int,), False, None))

    def opt_integer(self, key: str) -> int | None:
        value: int | None = self._get(key, (int,), True, None)
        return value

    def opt_number(self, key: str) -> float | None:
        value: float | None = self._get(key, (int, float), True, None)
        return value  # kept as given (an int stays an int), so a reply dumps as it came

    def flag(self, key: str, default: bool | None = None) -> bool:
        return bool(self._get(key, (bool,), default is not None, default))

    def opt_flag(self, key: str) -> bool | None:
        value: bool | None = self._get(key, (bool,), True, None)
        return value

    def obj(self, key: str) -> _Fields:
        return _Fields(self._get(key, (dict,), False, None), self.what, f"{self.where}{key}.")

    def array(self, key: str, optional: bool = False) -> list[Any]:
        value: list[Any] = self._get(key, (list,), optional, []) or []
        return value

    def texts(self, key: str, optional: bool = False) -> tuple[str, ...]:
        items = self.array(key, optional)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise _bad(self.what, f"{self.where}{key}[{i}] is {item!r}, not a string")
        return tuple(items)


class _Reply:
    """A JSON reply: `dumps()` on the parent's side, `loads()` on the host's."""

    WHAT: ClassVar[str]  # the command that prints it, for messages
    INDENT: ClassVar[int | None] = 2

    def to_json(self) -> Any:
        raise NotImplementedError

    @classmethod
    def from_json(cls, doc: object) -> Self:
        raise NotImplementedError

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=self.INDENT)

    @classmethod
    def loads(cls, text: str) -> Self:
        return cls.from_json(_loads(text, cls.WHAT))


# --- ls --json ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    memory: int | None  # bytes; None: not set
    cpus: float | None
    pids: int | None

    @classmethod
    def from_json(cls, f: _Fields) -> Limits:
        return cls(f.opt_integer("memory"), f.opt_number("cpus"), f.opt_integer("pids"))


@dataclass(frozen=True)
class AgentRow:
    """What a worker's Claude is doing, as `ls --json` says under `agent` (the parent's
    `AgentState.to_json()`; docs/cli.md has the states)."""

    state: str  # starting, working, waiting, idle, exited
    since: str  # ISO 8601
    reason: str
    session_id: str | None
    exit_code: int | None
    oom: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "reason": self.reason,
            "session_id": self.session_id,
            "exit_code": self.exit_code,
            "oom": self.oom,
        }

    @classmethod
    def from_json(cls, f: _Fields) -> AgentRow:
        return cls(
            state=f.text("state"),
            since=f.text("since"),
            reason=f.opt_text("reason") or "",
            session_id=f.opt_text("session_id"),
            exit_code=f.opt_integer("exit_code"),
            oom=f.flag("oom", default=False),
        )


@dataclass(frozen=True)
class ClaudeRow:
    """The Claude Code a worker runs: its version ("" for a worker made before the store)
    and whether a restart would give it another (a newer one installed, or the pin moved)."""

    version: str
    outdated: bool

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version or None, "outdated": self.outdated}

    @classmethod
    def from_json(cls, f: _Fields) -> Self:
        return cls(version=f.opt_text("version") or "", outdated=f.flag("outdated"))


@dataclass(frozen=True)
class WorkerRow:
    """One worker in `hal-agent ls --json` (the stable schema of docs/cli.md)."""

    name: str
    project: str
    state: str  # Docker's
    image: str
    created: str | None  # ISO 8601
    uptime_s: int
    window: bool
    limits: Limits
    agent: AgentRow | None = None  # None: the parent does not know (yet), or is older
    claude: ClaudeRow | None = None  # None: an older parent
    # a task's name; its repository's root, branch, base commit, commits past it and
    # whether it has uncommitted changes (None: not a git project, or an older parent)
    task: str | None = None
    repo: str | None = None
    branch: str | None = None
    base: str | None = None
    ahead: int | None = None
    dirty: bool | None = None

    def to_json(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "name": self.name,
            "project": self.project,
            "state": self.state,
            "image": self.image,
            "created": self.created,
            "uptime_s": self.uptime_s,
            "window": self.window,
            "limits": {"memory": lim.memory, "cpus": lim.cpus, "pids": lim.pids},
            "agent": self.agent.to_json() if self.agent else None,
            "claude": self.claude.to_json() if self.claude else None,
            "task": self.task,
            "repo": self.repo,
            "branch": self.branch,
            "base": self.base,
            "ahead": self.ahead,
            "dirty": self.dirty,
        }

    @classmethod
    def from_json(cls, doc: object, where: str = "") -> Self:
        f = _Fields(doc, "ls --json", where)
        return cls(
            name=f.text("name"),
            project=f.text("project"),
            state=f.text("state"),
            image=f.text("image"),
            created=f.opt_text("created"),
            uptime_s=f.integer("uptime_s"),
            window=f.flag("window"),
            limits=Limits.from_json(f.obj("limits")),
            agent=AgentRow.from_json(f.obj("agent")) if f.doc.get("agent") is not None else None,
            claude=ClaudeRow.from_json(f.obj("claude"))
            if f.doc.get("claude") is not None
            else None,
            task=f.opt_text("task"),
            repo=f.opt_text("repo"),
            branch=f.opt_text("branch"),
            base=f.opt_text("base"),
            ahead=f.opt_integer("ahead"),
            dirty=f.opt_flag("dirty"),
        )


@dataclass(frozen=True)
class LsReply(_Reply):
    WHAT: ClassVar[str] = "ls --json"
    rows: tuple[WorkerRow, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.rows]

    @classmethod
    def from_json(cls, doc: object) -> Self:
        return cls(_rows(doc, cls.WHAT, WorkerRow.from_json))


# --- stats --json ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerUsage:
    """One running worker in `hal-agent stats --json`: bytes are integers."""

    cpu_pct: float | None  # 100 per busy core; None until two samples exist
    mem_used: int
    mem_limit: int
    pids: int
    net_rx: int
    net_tx: int
    blk_read: int
    blk_write: int

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_pct": self.cpu_pct,
            "mem_used": self.mem_used,
            "mem_limit": self.mem_limit,
            "pids": self.pids,
            "net_rx": self.net_rx,
            "net_tx": self.net_tx,
            "blk_read": self.blk_read,
            "blk_write": self.blk_write,
        }

    @classmethod
    def from_json(cls, doc: object, where: str = "") -> Self:
        f = _Fields(doc, "stats --json", where)
        n = f.integer
        return cls(
            f.opt_number("cpu_pct"),
            n("mem_used"),
            n("mem_limit"),
            n("pids"),
            n("net_rx"),
            n("net_tx"),
            n("blk_read"),
            n("blk_write"),
        )


@dataclass(frozen=True)
class StatsReply(_Reply):
    WHAT: ClassVar[str] = "stats --json"
    usage: Mapping[str, WorkerUsage]  # worker name → figures, in the order given

    def to_json(self) -> dict[str, Any]:
        return {name: u.to_json() for name, u in self.usage.items()}

    @classmethod
    def from_json(cls, doc: object) -> Self:
        f = _Fields(doc, "stats --json")
        return cls({name: WorkerUsage.from_json(u, f"{name}.") for name, u in f.doc.items()})


# --- services --json ------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRow:
    name: str
    ok: bool
    state: str  # ok, disabled, missing, starting, exited, restarting
    detail: str = ""
    port: int | None = None
    mcp: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "state": self.state,
            "detail": self.detail,
            "port": self.port,
            "mcp": self.mcp,
        }

    @classmethod
    def from_json(cls, doc: object, where: str = "") -> Self:
        f = _Fields(doc, "services --json", where)
        return cls(
            f.text("name"),
            f.flag("ok"),
            f.text("state"),
            f.opt_text("detail") or "",
            f.opt_integer("port"),
            f.flag("mcp", default=False),
        )


@dataclass(frozen=True)
class ServicesReply(_Reply):
    WHAT: ClassVar[str] = "services --json"
    rows: tuple[ServiceRow, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.rows]

    @classmethod
    def from_json(cls, doc: object) -> Self:
        return cls(_rows(doc, cls.WHAT, ServiceRow.from_json))


# --- auth status --json ---------------------------------------------------------------------


@dataclass(frozen=True)
class AuthStatus(_Reply):
    """What the parent holds (`hal-agent auth status --json`): never the secret itself."""

    WHAT: ClassVar[str] = "auth status --json"
    present: bool
    expires_at: float | None = None  # seconds since the epoch
    refreshable: bool = False
    scopes: tuple[str, ...] = ()
    subscription: str | None = None
    refreshed_since_import: bool | None = None  # None: unknown (no OAuth import recorded)
    kind: str | None = None
    source: str | None = None
    imported_at: float | None = None
    fingerprint: str | None = None
    error: str | None = None  # the credentials file is unreadable

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {
                "present": self.present,
                "kind": self.kind,
                "source": self.source,
                "imported_at": self.imported_at,
                "expires_at": self.expires_at,
                "error": self.error,
            }
        doc: dict[str, Any] = {
            "present": self.present,
            "expires_at": self.expires_at,
            "refreshable": self.refreshable,
            "scopes": list(self.scopes),
            "subscription": self.subscription,
        }
        if self.refreshed_since_import is not None:
            doc["refreshed_since_import"] = self.refreshed_since_import
        doc.update(
            kind=self.kind,
            source=self.source,
            imported_at=self.imported_at,
            fingerprint=self.fingerprint,
        )
        return doc

    @classmethod
    def from_json(cls, doc: object) -> Self:
        f = _Fields(doc, "auth status --json")
        return cls(
            present=f.flag("present"),
            expires_at=f.opt_number("expires_at"),
            refreshable=f.flag("refreshable", default=False),
            scopes=f.texts("scopes", True),
            subscription=f.opt_text("subscription"),
            refreshed_since_import=f.opt_flag("refreshed_since_import"),
            kind=f.opt_text("kind"),
            source=f.opt_text("source"),
            imported_at=f.opt_number("imported_at"),
            fingerprint=f.opt_text("fingerprint"),
            error=f.opt_text("error"),
        )


# --- health --json, sync --status, ready ----------------------------------------------------


@dataclass(frozen=True)
class LoopError:
    time: str  # ISO 8601
    text: str


@dataclass(frozen=True)
class Health(_Reply):
    """The loop's recent errors and the `[parent]` keys waiting for a restart."""

    WHAT: ClassVar[str] = "health --json"
    errors: tuple[LoopError, ...] = ()
    restart_needed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "errors": [{"time": e.time, "text": e.text} for e in self.errors],
            "restart_needed": list(self.restart_needed),
        }

    @classmethod
    def from_json(cls, doc: object) -> Self:
        f = _Fields(doc, "health --json")
        errors = []
        for i, e in enumerate(f.array("errors", optional=True)):
            item = _Fields(e, "health --json", f"errors[{i}].")
            errors.append(LoopError(item.text("time"), item.text("text")))
        return cls(tuple(errors), f.texts("restart_needed", optional=True))


@dataclass(frozen=True)
class SyncStatus(_Reply):
    """When the host's Claude config was last applied (`hal-agent sync --status`)."""

    WHAT: ClassVar[str] = "sync --status"
    INDENT: ClassVar[int | None] = None  # one line
    synced_at: float | None  # None: never
    files: int

    def to_json(self) -> dict[str, Any]:
        return {"synced_at": self.synced_at, "files": self.files}

    @classmethod
    def from_json(cls, doc: object) -> Self:
        f = _Fields(doc, "sync --status")
        return cls(f.opt_number("synced_at"), f.integer("files"))


@dataclass(frozen=True)
class Ready:
    """`hal-agent ready --timeout N` answers with its exit code; the text says why not."""

    ready: bool
    detail: str = ""

    @classmethod
    def from_exit(cls, code: int, output: str) -> Self:
        return cls(code == 0, output.strip())


# --- egress --json (and the egress log's lines) ----------------------------------------------


@dataclass(frozen=True)
class EgressRow:
    """One request through the parent's egress proxy or a service gate: a line of the egress
    log (`ParentLayout.egress_log`) and a row of `hal-agent egress --json`."""

    t: float  # seconds since the epoch
    worker: str | None  # the worker session the client address belongs to; None: unknown
    client: str  # the client's IP address
    host: str  # as the request named it (a gate: the gate's address)
    port: int
    addr: str | None  # the address connected to (or refused); None: never resolved
    verdict: str  # "allow" | "deny" (a rule or a gate refused) | "error" (no rule did)
    rule: str  # the entry that allowed it, "open", "gate", or why it was denied
    method: str  # "CONNECT", "GET", … ; "GATE" for a service gate

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "worker": self.worker,
            "client": self.client,
            "host": self.host,
            "port": self.port,
            "addr": self.addr,
            "verdict": self.verdict,
            "rule": self.rule,
            "method": self.method,
        }

    @classmethod
    def from_json(cls, doc: object, where: str = "") -> Self:
        f = _Fields(doc, "egress --json", where)
        t = f.opt_number("t")
        if t is None:
            raise _bad("egress --json", f"{where}t is missing")
        return cls(
            t=float(t),
            worker=f.opt_text("worker"),
            client=f.text("client"),
            host=f.text("host"),
            port=f.integer("port"),
            addr=f.opt_text("addr"),
            verdict=f.text("verdict"),
            rule=f.text("rule"),
            method=f.text("method"),
        )


@dataclass(frozen=True)
class EgressReply(_Reply):
    """`hal-agent egress --json`: the newest requests last."""

    WHAT: ClassVar[str] = "egress --json"
    rows: tuple[EgressRow, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.rows]

    @classmethod
    def from_json(cls, doc: object) -> Self:
        return cls(_rows(doc, cls.WHAT, EgressRow.from_json))


@dataclass(frozen=True)
class PortRow:
    """One listed port of one running worker (`[worker] ports`): a row of `hal-agent ports
    --json`, and of the loop's snapshot."""

    name: str  # the worker's session
    port: int  # the port its server listens on, in the worker
    url: str | None  # where the host's browser opens it; None: no host port (see problem)
    host_port: int | None = None
    problem: str | None = None  # why it has no host port

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "url": self.url,
            "host_port": self.host_port,
            "problem": self.problem,
        }

    @classmethod
    def from_json(cls, doc: object, where: str = "") -> Self:
        f = _Fields(doc, "ports --json", where)
        return cls(
            name=f.text("name"),
            port=f.integer("port"),
            url=f.opt_text("url"),
            host_port=f.opt_integer("host_port"),
            problem=f.opt_text("problem"),
        )


@dataclass(frozen=True)
class PortsReply(_Reply):
    """`hal-agent ports --json`: every listed port of the running workers, by name."""

    WHAT: ClassVar[str] = "ports --json"
    rows: tuple[PortRow, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.rows]

    @classmethod
    def from_json(cls, doc: object) -> Self:
        return cls(_rows(doc, cls.WHAT, PortRow.from_json))
