"""The config's shape: sections as frozen dataclasses, each key's type, check and apply class.

Pure. The dataclass defaults are the embedded defaults; `docs/config.md` documents every key
(a test keeps the two in step).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from hal_common import __version__, claude_code
from hal_common.egress import MODES as EGRESS_MODES
from hal_common.egress import check_allow
from hal_common.engines import check_engine
from hal_common.identity import check_dirs
from hal_common.ports import (
    DEFAULT_ADDRESS,
    DEFAULT_RANGE,
    check_address,
    check_range,
    check_worker_ports,
)
from hal_common.shared_services import ServiceSpec, effective

SECURITY_MODES = ("auto", "caps", "privileged", "sysbox")
PROJECTS_MODES = ("auto", "mount", "git")  # hal_common.gitsync
RESTART_POLICIES = ("no", "on-failure", "unless-stopped", "always")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
WATCH_MODES = ("auto", "inotify", "poll")
_MEMORY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_CONTAINER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# A worker always runs with limits: these are the least the config accepts. Below 64 MiB
# nothing of a worker starts (Claude Code alone takes ~200 MiB); below 64 pids Claude Code's
# threads, tmux, a shell and git no longer fit; the engine's CPU granularity is 0.01.
WORKER_MIN_MEMORY = 64 << 20
WORKER_MIN_PIDS = 64
WORKER_MIN_CPUS = 0.01


def parse_memory(text: str) -> int:
    """'512m' → bytes; '' or '0' → 0 (no limit)."""
    if text.strip() in ("", "0"):
        return 0
    m = _MEMORY_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a memory size: {text!r} (use e.g. '512m', '4g')")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class ParentConfig:
    name: str = "hal9000-parent"
    image: str = f"hal9000/parent:{__version__}"
    base_image: str = "debian:bookworm-slim"
    roots: tuple[str, ...] = ("~",)
    security: str = "auto"
    memory: str = ""
    cpus: float = 0.0
    # host ports the parent publishes at create, for workers' `ports` ("": none)
    ports: str = DEFAULT_RANGE
    ports_address: str = DEFAULT_ADDRESS  # the host address they are published on
    # how a project reaches its worker: the roots' bind mount, a git bundle, or detected
    projects: str = "auto"
    # the Docker engine the parent runs on ("": the current context, else the local socket)
    engine: str = ""


@dataclass(frozen=True)
class WorkerConfig:
    image: str = "hal9000/worker:minimal"
    command: tuple[str, ...] = ("claude",)
    memory: str = "4g"
    cpus: float = 2.0
    pids: int = 1024
    restart: str = "no"
    # names passed from the parent's environment, or a table NAME = "literal value"
    env: tuple[str, ...] | dict[str, str] = ()
    resume: bool = True  # a restarted worker continues its last conversation
    ports: tuple[int, ...] = ()  # its servers' ports, each reachable from the host's browser
    # untracked files of the repository copied into a new task's worktree (`.env`, ...)
    copy: tuple[str, ...] = ()


@dataclass(frozen=True)
class DashboardConfig:
    refresh: float = 2.0
    max_rows: int = 0  # 0: as many as fit the pane


@dataclass(frozen=True)
class KeysConfig:
    """The parent's tmux bindings: `prefix`, then one key per action."""

    prefix: str = "C-b"
    new_session: str = "N"
    dashboard: str = "D"
    stop: str = "X"
    restart: str = "R"
    shell: str = "S"
    choose: str = "W"
    stats: str = "T"
    next_waiting: str = "A"
    diff: str = "G"


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"


@dataclass(frozen=True)
class WatchConfig:
    mode: str = "auto"
    poll_interval: float = 1.0


@dataclass(frozen=True)
class NetworkConfig:
    """The workers' egress: `allowlist` (the defaults plus `allow`) or `open` (any public
    address); special addresses always need an IP/CIDR entry (`hal_common.egress`)."""

    mode: str = "allowlist"
    allow: tuple[str, ...] = ()  # added to `egress.DEFAULT_ALLOW`


NOTIFY_STATES = ("waiting", "idle", "exited")


@dataclass(frozen=True)
class NotifyConfig:
    """A command the parent runs when a worker enters one of the states in `on`."""

    command: tuple[str, ...] = ()  # argv, no shell; empty: no notifications
    on: tuple[str, ...] = ("waiting", "exited")
    debounce: float = 30.0  # seconds: the same worker and state notify once in this time


@dataclass(frozen=True)
class ClaudeConfig:
    """Which Claude Code workers run, from the parent's store (`claudy claude update`)."""

    version: str = ""  # "": the newest installed (claudy installs the tested one if none)


@dataclass(frozen=True)
class IdentityConfig:
    """Which projects get the host's SSH agent and the imported GitHub token: directories
    (`~/src/app`), each granting the project it names and the projects under it. Read from
    the user's config only: a project's own file can never opt itself in."""

    ssh_agent: tuple[str, ...] = ()
    github_token: tuple[str, ...] = ()


# Sections a project's `.hal9000.toml` may never set: they hand out the user's secrets.
USER_ONLY_SECTIONS = frozenset({"parent", "identity"})


@dataclass(frozen=True)
class Config:
    parent: ParentConfig = field(default_factory=ParentConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    log: LogConfig = field(default_factory=LogConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    claude: ClaudeConfig = field(default_factory=ClaudeConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    # every service, the built-ins included (merged with the user's tables), disabled ones too
    services: tuple[ServiceSpec, ...] = field(default_factory=lambda: effective({}))
    warnings: tuple[str, ...] = field(default=(), compare=False)


SECTIONS: dict[str, type[Any]] = {
    "parent": ParentConfig,
    "worker": WorkerConfig,
    "dashboard": DashboardConfig,
    "keys": KeysConfig,
    "log": LogConfig,
    "watch": WatchConfig,
    "network": NetworkConfig,
    "notify": NotifyConfig,
    "claude": ClaudeConfig,
    "identity": IdentityConfig,
}

# How a change reaches the running system; `hal_common.config_diff` groups changes by it.
RESTART = "restart"  # the parent container must be recreated: `claudy down && claudy`
WORKER_LIMITS = "worker_limits"  # running workers updated in place (docker update)
WORKER_TEMPLATE = "worker_template"  # workers created from now on
RESUME = "resume"  # read whenever a worker's resume file is written: nothing to redo
HOST = "host"  # claudy's own on the host (which engine, how projects travel): not the parent's
_SECTION_APPLY = {
    "parent": RESTART,
    "dashboard": "dashboard",
    "keys": "keys",
    "log": "log",
    "watch": "watch",
    "services": "services",
    "network": "network",  # the proxy swaps its policy: running workers within 2 s
    "claude": WORKER_TEMPLATE,  # the version new spawns and restarts get
    "notify": "notify",  # the notifier takes the new command, states and debounce
    "identity": WORKER_TEMPLATE,  # the grants of workers started from then on
}
_WORKER_LIMITS = frozenset({"cpus", "memory", "pids"})


def apply_class(section: str, key: str) -> str:
    """`restart`, `worker_limits`, `worker_template`, or the section's own live group."""
    if (section, key) == ("worker", "resume"):
        return RESUME
    if (section, key) in (("parent", "projects"), ("parent", "engine")):
        return HOST
    if section == "worker":
        return WORKER_LIMITS if key in _WORKER_LIMITS else WORKER_TEMPLATE
    return _SECTION_APPLY[section]


@dataclass(frozen=True)
class Key:
    """One schema key: `section.name`, its Python type, default and apply class."""

    section: str
    name: str
    kind: type[Any]
    default: Any

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def apply(self) -> str:
        return apply_class(self.section, self.name)


class PortList:
    """The kind of `[worker] ports`: an array of port numbers."""


class NamesOrTable:
    """The kind of `[worker] env`: an array of variable names (values from the parent's
    environment) or a table of literal strings (`NAME = "value"`)."""


# keys whose kind is not their default's type
_KINDS: dict[tuple[str, str], type[Any]] = {
    ("worker", "env"): NamesOrTable,
    ("worker", "ports"): PortList,
}


def _key(section: str, name: str, default: Any) -> Key:
    return Key(section, name, _KINDS.get((section, name), type(default)), default)


def schema_keys() -> list[Key]:
    """Every fixed key, in declaration order (a service table's keys are
    `shared_services.SERVICE_KEYS`)."""
    return [
        _key(section, f.name, getattr(cls(), f.name))
        for section, cls in SECTIONS.items()
        for f in fields(cls)
    ]


def find_key(section: str, name: str) -> Key | None:
    cls = SECTIONS.get(section)
    if cls is None or name not in {f.name for f in fields(cls)}:
        return None
    return _key(section, name, getattr(cls(), name))


# -- types ---------------------------------------------------------------------------------

TYPE_NAMES: dict[type[Any], str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    tuple: "an array of strings",
    dict: "a table of strings",
    NamesOrTable: 'an array of variable names or a table of strings (NAME = "value")',
    PortList: "an array of port numbers",
}


def describe(value: object) -> str:
    """What a parsed TOML value is, in words: `'two' (a string)`."""
    kinds: list[tuple[type[Any] | tuple[type[Any], ...], str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        ((dt.datetime, dt.date, dt.time), "a date/time"),
    ]
    what = next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)
    shown = repr(value) if not isinstance(value, dt.date | dt.time) else value.isoformat()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({what})"


def coerce(value: Any, kind: type[Any]) -> Any:
    """`value` as `kind`, or TypeError naming the expected type (ints are fine for numbers)."""
    if kind is NamesOrTable:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return dict(value)
    elif kind is PortList:
        if isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
    elif kind is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif kind is dict:
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return dict(value)
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, kind):
        return value
    raise TypeError(TYPE_NAMES[kind])


# -- value checks --------------------------------------------------------------------------


def _one_of(allowed: tuple[str, ...]) -> Any:
    def check(v: str) -> str | None:
        return None if v in allowed else f"is {v!r}; expected one of {', '.join(allowed)}"

    return check


def _memory(v: str) -> str | None:
    try:
        parse_memory(v)
    except ValueError:
        return f"is not a memory size: {v!r} (use e.g. '512m', '4g', or '' for no limit)"
    return None


def _worker_memory(v: str) -> str | None:
    try:
        size = parse_memory(v)
    except ValueError:
        return f"is not a memory size: {v!r} (use e.g. '512m', '4g')"
    if size < WORKER_MIN_MEMORY:
        return f"is {v!r}; a worker always has a memory limit, at least '64m' (e.g. '4g')"
    return None


def _worker_cpus(v: float) -> str | None:
    if not math.isfinite(v):
        return "must be a finite number"
    if v < WORKER_MIN_CPUS:
        return f"is {v!r}; a worker always has a CPU limit, at least {WORKER_MIN_CPUS} (e.g. 2)"
    return None


def _worker_pids(v: int) -> str | None:
    if v < WORKER_MIN_PIDS:
        return f"is {v!r}; a worker always has a process limit, at least {WORKER_MIN_PIDS}"
    return None


def _not_negative(v: float) -> str | None:
    if isinstance(v, float) and not math.isfinite(v):
        return "must be a finite number"
    return "must not be negative" if v < 0 else None


def _seconds(low: float, high: float) -> Any:
    def check(v: float) -> str | None:
        if not math.isfinite(v) or not low <= v <= high:
            return f"is {v!r}; expected {low:g} to {high:g} seconds"
        return None

    return check


# Intervals the parent runs with: below 0.1 s a tick or poll becomes a busy loop; above an
# hour nothing would seem to happen. `notify.debounce` 0 means every change notifies.
INTERVAL_RANGE = (0.1, 3600.0)
DEBOUNCE_RANGE = (0.0, 3600.0)


def _non_empty(v: str | tuple[str, ...]) -> str | None:
    return "must not be empty" if not v or (isinstance(v, str) and not v.strip()) else None


# tmux's key names (key-string.c, tmux 3.3a; compared case-insensitively, as tmux does).
# Mouse keys and User keys are tmux names too, but nothing a keyboard binding can use.
TMUX_NAMED_KEYS = (
    *(f"F{n}" for n in range(1, 13)),
    "Up", "Down", "Left", "Right", "Home", "End",
    "PageUp", "PgUp", "PPage", "PageDown", "PgDn", "NPage",
    "Insert", "IC", "Delete", "DC",
    "Tab", "BTab", "Space", "Enter", "Escape", "BSpace",
    *(f"KP{k}" for k in "0123456789/*-+."), "KPEnter",
)  # fmt: skip
_NAMED = frozenset(n.lower() for n in TMUX_NAMED_KEYS)
# with C-, these characters stay "C-" keys (extended keys); any other must map to a control
# character (C-a … C-z, C-@ … C-_, C-Space, C-?), else tmux cannot bind it (e.g. C-~, C-%)
_CTRL_KEEPS = frozenset("!#()+,-.0123456789:;<=>'`/")
TMUX_KEY_FORMS = (
    "a tmux key: one character ('N', '%') or a name (F1-F12, Up, Down, Left, Right, Home, "
    "End, PageUp, PageDown, Insert, Delete, Tab, BTab, Space, Enter, Escape, BSpace, "
    "KP0-KP9, KPEnter), after any of the modifiers C- (Ctrl), M- (Alt), S- (Shift), e.g. "
    "'C-b', 'M-a', 'C-S-Up', 'F5', '^B'"
)


def tmux_key(text: str) -> bool:
    """Whether tmux can bind `text` (its key_string_lookup_string; None and Any, which bind
    nothing, and control characters are refused, which tmux would take). A key ending in
    `;` is refused too: the parent passes keys to tmux as arguments, where a trailing `;`
    separates commands."""
    if text.endswith(";"):
        return False
    s, ctrl = text, False
    if len(s) > 1 and s[0] == "^":  # ^B: Ctrl
        s, ctrl = s[1:], True
    while len(s) > 1 and s[1] == "-":
        if s[0] not in "CcMmSs":
            return False
        ctrl = ctrl or s[0] in "Cc"
        s = s[2:]
    if len(s) != 1:
        return s.lower() in _NAMED
    if not s.isprintable() or s.isspace():
        return False
    if ctrl and s.isascii() and s not in _CTRL_KEEPS:
        return s.isalpha() or "@" <= s <= "_" or s == "?"
    return True


def _tmux_key(v: str) -> str | None:
    return None if tmux_key(v) else f"is {v!r}, which tmux cannot bind; use {TMUX_KEY_FORMS}"


def _env(v: tuple[str, ...] | dict[str, str]) -> str | None:
    bad = [n for n in v if not _ENV_NAME_RE.match(n)]
    if bad:
        return f"has {bad[0]!r}, which is not an environment variable name"
    if isinstance(v, dict):
        nul = [n for n, value in v.items() if "\0" in value]
        if nul:
            return f"has a NUL character in the value of {nul[0]}"
    return None


def _copy(v: tuple[str, ...]) -> str | None:
    """Paths relative to the repository's root, inside it, not into `.git` or `.hal9000`."""
    for entry in v:
        parts = entry.split("/")
        if (
            not entry
            or entry.startswith("/")
            or any(p in ("", ".", "..") for p in parts)
            or parts[0] in (".git", ".hal9000")
            or "\0" in entry
        ):
            return (
                f"has {entry!r}; expected paths of files relative to the repository's root "
                "(e.g. '.env', 'config/local.toml'), without '..', not in .git or .hal9000"
            )
    return None


def _notify_on(v: tuple[str, ...]) -> str | None:
    bad = [s for s in v if s not in NOTIFY_STATES]
    if bad:
        return f"has {bad[0]!r}; expected states among {', '.join(NOTIFY_STATES)}"
    return None


_CHECKS: dict[tuple[str, str], Any] = {
    ("parent", "name"): lambda v: (
        None if _CONTAINER_NAME_RE.match(v) else "must be a container name ([a-zA-Z0-9_.-])"
    ),
    ("parent", "image"): _non_empty,
    ("parent", "base_image"): _non_empty,
    ("parent", "roots"): lambda v: None if v else "must name at least one directory",
    ("parent", "security"): _one_of(SECURITY_MODES),
    ("parent", "memory"): _memory,
    ("parent", "cpus"): _not_negative,
    ("parent", "ports"): check_range,
    ("parent", "ports_address"): check_address,
    ("parent", "projects"): _one_of(PROJECTS_MODES),
    ("parent", "engine"): check_engine,
    ("worker", "image"): _non_empty,
    ("worker", "command"): _non_empty,
    ("worker", "memory"): _worker_memory,
    ("worker", "cpus"): _worker_cpus,
    ("worker", "pids"): _worker_pids,
    ("worker", "restart"): _one_of(RESTART_POLICIES),
    ("worker", "env"): _env,
    ("worker", "ports"): check_worker_ports,
    ("worker", "copy"): _copy,
    ("dashboard", "refresh"): _seconds(*INTERVAL_RANGE),
    ("dashboard", "max_rows"): _not_negative,
    ("log", "level"): _one_of(LOG_LEVELS),
    ("watch", "mode"): _one_of(WATCH_MODES),
    ("watch", "poll_interval"): _seconds(*INTERVAL_RANGE),
    ("network", "mode"): _one_of(EGRESS_MODES),
    ("network", "allow"): check_allow,
    ("notify", "on"): _notify_on,
    ("notify", "debounce"): _seconds(*DEBOUNCE_RANGE),
    ("identity", "ssh_agent"): check_dirs,
    ("identity", "github_token"): check_dirs,
    ("claude", "version"): lambda v: None if v == "" else claude_code.problem(v),
    **{("keys", f.name): _tmux_key for f in fields(KeysConfig)},
}


# Keys that no longer exist, with what replaced them: a file (or an environment variable)
# that still sets one is told so, and the value is ignored.
RETIRED: dict[tuple[str, str], str] = {
    ("worker", "network"): (
        "[worker].network is gone and ignored: workers always run on hal-9000's internal "
        "network, their only way out the parent's egress proxy; what they may reach is "
        '[network] mode ("allowlist" or "open") and allow = [...]'
    ),
}


def check_value(section: str, key: str, value: Any) -> str | None:
    """What is wrong with an already typed value, as words that follow the key's name."""
    check = _CHECKS.get((section, key))
    result: str | None = check(value) if check else None
    return result


def key_conflicts(keys: KeysConfig) -> list[tuple[str, str]]:
    """Pairs of (earlier, later) binding names that share a key (the prefix is separate)."""
    seen: dict[str, str] = {}
    clashes: list[tuple[str, str]] = []
    for f in fields(KeysConfig):
        if f.name == "prefix":
            continue
        key = getattr(keys, f.name)
        if key in seen:
            clashes.append((seen[key], f.name))
        else:
            seen[key] = f.name
    return clashes
