"""A project's own settings: `.hal9000.toml` at its repository's root, over the user's config.

Pure. The text is parsed with the user config's pipeline (`config_layers`: tomlkit, then
`toml_positions`), so every problem names the file, line and column. A project file is
written by whoever can write the project, the agent included, so it is held to more than the
user's config:

- only `[worker]` and `[network]`, and of those only the keys below; any other key or
  section is an error naming its line (never a warning: a file meant to change a worker
  that silently does not is a trap);
- `[worker.env]` is a table of literal values: a project may not name the parent's
  variables to pass through;
- `network.mode` stays the user's;
- keys that widen what the user's config gives (`widening`: more egress, ports, limits
  above the user's, an image that is not a built-in, a Dockerfile, files copied into
  worktrees) apply only once the user trusted the file's content (`hal-agent trust DIR`);
  the rest (env literals, `setup`, lower limits, a built-in profile) apply at once.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from hal_common.config_layers import Collector, parse_toml
from hal_common.config_schema import (
    SECTIONS,
    Config,
    WorkerConfig,
    check_value,
    coerce,
    describe,
    find_key,
    parse_memory,
)
from hal_common.egress import DEFAULT_ALLOW, first_bad, parse_entry
from hal_common.errors import ConfigError, UsageError

PROJECT_FILE = ".hal9000.toml"
MAX_BYTES = 64 << 10  # a project file is a few lines; a bigger one is refused unread
PROFILES = ("minimal", "standard", "python", "node", "go")
WORKER_IMAGE = "hal9000/worker"
BUILTIN_IMAGES = frozenset(f"{WORKER_IMAGE}:{p}" for p in PROFILES)
PROJECT_IMAGE = "hal9000/project"  # a user Dockerfile's image: PROJECT_IMAGE:<content hash>
HINT = "fix .hal9000.toml (nothing was created); `hal-agent config validate --project DIR`"

# [worker] keys a project may set that the user's config does not have
PROJECT_ONLY: dict[str, type[Any]] = {"profile": str, "dockerfile": str, "setup": str}
# [worker] keys of the user's schema a project may set (others' keys: when the schema has them)
WORKER_KEYS = ("image", "memory", "cpus", "pids", "env", "ports", "copy")
LIMITS = ("memory", "cpus", "pids")
_USERS_ONLY = "is the user's to set, not a project's (in their config.toml)"


@dataclass(frozen=True)
class ProjectFile:
    """A validated project file: the keys it sets, as typed values."""

    source: str  # the path, for messages
    sha256: str  # of its bytes: what `trust` records
    worker: Mapping[str, Any] = field(default_factory=dict)  # WORKER_KEYS given, env aside
    env: Mapping[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] = ()
    profile: str = ""
    dockerfile: str = ""  # relative to the repository's root
    setup: str = ""
    at: Mapping[str, str] = field(default_factory=dict)  # dotted key → "source:line:col"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_project(data: bytes, source: str) -> ProjectFile:
    """The project file's bytes → a ProjectFile; ConfigError listing every problem."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{source}:1:1: not UTF-8 text ({e.reason} at byte {e.start})", hint=HINT, source=source
        ) from None
    c = Collector(source, text)
    doc = parse_toml(text, source)
    out: dict[str, Any] = {"worker": {}, "env": {}}
    for section, table in doc.items():
        if section not in ("worker", "network"):
            where = "is the user's" if section in (*SECTIONS, "services") else "is not a section"
            c.error(
                (section,),
                f"[{section}] {where}: a project file has only [worker] and [network]",
                value=False,
            )
            continue
        if not isinstance(table, dict):
            c.error((section,), f"[{section}] must be a table, got {describe(table)}")
            continue
        for key, raw in table.items():
            if section == "worker":
                _worker_key(c, key, raw, out)
            else:
                _network_key(c, key, raw, out)
    images = [k for k in ("image", "profile", "dockerfile") if k in out["worker"] or k in out]
    for extra in images[1:]:
        c.error(
            ("worker", extra),
            f"[worker].{images[0]} and [worker].{extra} both name the worker's image; keep one",
            value=False,
        )
    c.raise_if_any()
    at = {}
    for path in c.positions:
        if len(path) == 2:
            at[".".join(path)] = c.at(path).rstrip(":")
    return ProjectFile(
        source=source,
        sha256=sha256(data),
        worker=out["worker"],
        env=out["env"],
        allow=out.get("allow", ()),
        profile=out.get("profile", ""),
        dockerfile=out.get("dockerfile", ""),
        setup=out.get("setup", ""),
        at=at,
    )


def _worker_key(c: Collector, key: str, raw: Any, out: dict[str, Any]) -> None:
    path = ("worker", key)
    if key in PROJECT_ONLY:
        if not isinstance(raw, str):
            c.error(path, f"[worker].{key} must be a string, got {describe(raw)}")
        elif problem := _project_only(key, raw):
            c.error(path, f"[worker].{key} {problem}")
        else:
            out[key] = raw
        return
    spec = find_key("worker", key)
    if spec is None or key not in WORKER_KEYS:
        if spec is not None:
            c.error(path, f"[worker].{key} {_USERS_ONLY}", value=False)
        else:
            names = [
                k
                for k in (*WORKER_KEYS, *PROJECT_ONLY)
                if find_key("worker", k) or k in PROJECT_ONLY
            ]
            c.error(path, f"unknown key [worker].{key}{_close(key, names)}", value=False)
        return
    if key == "env" and isinstance(raw, list):
        c.error(
            path,
            "[worker].env in a project file is a table of literal values ([worker.env] "
            "NAME = \"value\"): only the user's config may pass the parent's variables",
        )
        return
    try:
        value = coerce(raw, spec.kind)
    except TypeError as e:
        c.error(path, f"[worker].{key} must be {e}, got {describe(raw)}")
        return
    if problem := check_value("worker", key, value):
        c.error(path, f"[worker].{key} {problem}")
        return
    if key == "env":
        out["env"] = dict(value)
    else:
        out["worker"][key] = value


def _project_only(key: str, value: str) -> str | None:
    if "\0" in value:
        return "has a NUL character"
    if key == "profile" and value not in PROFILES:
        return f"is {value!r}; expected one of {', '.join(PROFILES)}"
    if key == "dockerfile":
        norm = posixpath.normpath(value)
        if not value or value.startswith("/") or norm == ".." or norm.startswith("../"):
            return f"is {value!r}; give a path inside the repository, relative to its root"
    if key == "setup" and not value.strip():
        return "is empty; leave it out for no setup"
    return None


def _network_key(c: Collector, key: str, raw: Any, out: dict[str, Any]) -> None:
    path = ("network", key)
    if key == "mode":
        c.error(path, f"[network].mode {_USERS_ONLY}: a project cannot change it", value=False)
        return
    if key != "allow":
        c.error(path, f"unknown key [network].{key}{_close(key, ['allow'])}", value=False)
        return
    try:
        value = coerce(raw, tuple)
    except TypeError as e:
        c.error(path, f"[network].allow must be {e}, got {describe(raw)}")
        return
    if problem := check_value("network", "allow", value):
        bad = first_bad(value)
        if bad:
            c.error_in_array(path, bad[0], f"[network].allow {problem}")
        else:
            c.error(path, f"[network].allow {problem}")
        return
    out["allow"] = value


def _close(word: str, options: list[str]) -> str:
    import difflib

    match = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


# -- what widens -----------------------------------------------------------------------------


def widening(pf: ProjectFile, user: Config) -> list[str]:
    """What in `pf` gives a worker more than the user's config does, one line each with its
    place: these apply only when the user trusted this content."""
    out: list[str] = []

    def say(key: str, what: str) -> None:
        out.append(f"{pf.at.get(key, pf.source)}: {what}")

    known = {parse_entry(e) for e in (*DEFAULT_ALLOW, *user.network.allow)}
    extra = [e for e in pf.allow if parse_entry(e) not in known]
    if extra:
        say("network.allow", f"[network].allow adds {', '.join(map(repr, extra))}")
    w = pf.worker
    if "memory" in w and parse_memory(w["memory"]) > parse_memory(user.worker.memory):
        say(
            "worker.memory",
            f"[worker].memory {w['memory']!r} is above yours ({user.worker.memory!r})",
        )
    if "cpus" in w and w["cpus"] > user.worker.cpus:
        say("worker.cpus", f"[worker].cpus {w['cpus']:g} is above yours ({user.worker.cpus:g})")
    if "pids" in w and w["pids"] > user.worker.pids:
        say("worker.pids", f"[worker].pids {w['pids']} is above yours ({user.worker.pids})")
    if "image" in w and w["image"] not in BUILTIN_IMAGES:
        say("worker.image", f"[worker].image {w['image']!r} is not a built-in image")
    if pf.dockerfile:
        say(
            "worker.dockerfile",
            f"[worker].dockerfile {pf.dockerfile!r} is built in the parent (its RUN steps "
            "have the parent's network)",
        )
    theirs = set(getattr(user.worker, "ports", ()))
    ports = [p for p in w.get("ports", ()) if p not in theirs]
    if ports:
        say("worker.ports", f"[worker].ports publishes {', '.join(map(str, ports))}")
    if w.get("copy"):
        say("worker.copy", f"[worker].copy copies {', '.join(map(repr, w['copy']))} into worktrees")
    other = [k for k in w if k not in (*LIMITS, "image", "ports", "copy")]
    for key in other:  # a key added to the schema that this list does not know: widening
        say(f"worker.{key}", f"[worker].{key} is set")
    return out


# -- the merge -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlay:
    """What a project's file changes for its workers, ready for the worker spec."""

    root: str = ""  # the repository's root ("": no project file)
    base: WorkerConfig | None = None  # the user's own, before the project's keys
    sha256: str = ""
    trusted: bool = False
    env: Mapping[str, str] = field(default_factory=dict)  # literals, over the user's env
    allow: tuple[str, ...] = ()  # egress entries for this project's workers only
    setup: str = ""
    dockerfile: str = ""
    limits: Mapping[str, Any] = field(default_factory=dict)  # the project's, as applied

    def label(self) -> str:
        """The worker's record of its project settings (a label: the loop reads it for the
        proxy's per-worker entries and for live limit updates); "" when there are none."""
        if not self.sha256:
            return ""
        body: dict[str, Any] = {
            "sha256": self.sha256,
            "trusted": self.trusted,
            "limits": dict(self.limits),
        }
        if self.allow:
            body["allow"] = list(self.allow)
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


class Untrusted(UsageError):
    """A project file widens what the user's config gives, and the user has not trusted
    this content of it."""


def untrusted_error(root: str, reasons: list[str], changed: bool) -> Untrusted:
    state = "changed since you trusted it" if changed else "not trusted"
    return Untrusted(
        f"{root}/{PROJECT_FILE} is {state}, and it widens what your config gives:\n  "
        + "\n  ".join(reasons),
        hint=f"review {PROJECT_FILE}, then `claudy trust {root}` (in the parent: "
        f"`hal-agent trust {root}`); nothing was created",
    )


def merge(
    user: Config, pf: ProjectFile | None, root: str, trusted_hash: str | None
) -> tuple[Config, Overlay]:
    """The config `root`'s workers get: the user's with `pf` over it. `trusted_hash`: the
    sha256 the user trusted for this root (None: never). Untrusted when `pf` widens and its
    content is not the trusted one."""
    if pf is None:
        return user, Overlay()
    reasons = widening(pf, user)
    trusted = trusted_hash == pf.sha256
    if reasons and not trusted:
        raise untrusted_error(root, reasons, changed=trusted_hash is not None)
    given = dict(pf.worker)
    if pf.profile:
        given["image"] = f"{WORKER_IMAGE}:{pf.profile}"
    known = {f.name for f in fields(WorkerConfig)}
    worker = replace(user.worker, **{k: v for k, v in given.items() if k in known})
    overlay = Overlay(
        root=root,
        base=user.worker,
        sha256=pf.sha256,
        trusted=trusted,
        env=dict(pf.env),
        allow=pf.allow,
        setup=pf.setup,
        dockerfile=pf.dockerfile,
        limits={k: given[k] for k in LIMITS if k in given},
    )
    return replace(user, worker=worker), overlay


def limits_with(user: WorkerConfig, label: str) -> WorkerConfig:
    """The limits a running worker gets when the user's config changes: the user's, with its
    project's (`Overlay.label`) over them; an untrusted project's only where they stay at or
    below the user's new ones (a lowered user limit is never widened by a project)."""
    try:
        body = json.loads(label) if label else {}
        limits = body.get("limits") or {}
        trusted = body.get("trusted") is True
    except (ValueError, AttributeError):
        return user
    if not isinstance(limits, dict):
        return user
    out: dict[str, Any] = {}
    for key in LIMITS:
        if key not in limits:
            continue
        value, mine = limits[key], getattr(user, key)
        try:
            lower = parse_memory(value) <= parse_memory(mine) if key == "memory" else value <= mine
        except (TypeError, ValueError):
            continue
        if trusted or lower:
            out[key] = value
    return replace(user, **out)
