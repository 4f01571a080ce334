"""Claude's files in the parent: the shared home, and each worker's private state.

- The shared home (`layout.claude_home`, parent-only) holds the config workers see read-only
  (`settings.json`, `CLAUDE.md`, `agents/`, `commands/`, `skills/`, `plugins/`), the one
  shared writable file `.credentials.json`, hal-9000's bookkeeping, and `.claude.json` as
  the base state (the host's keys `claudy sync` brought; an imported API key).
- A worker's private state (`layout.worker_state(session)`) is its `$CLAUDE_CONFIG_DIR`:
  its own `.claude.json`, transcripts, todos and history. The parent keeps its
  `.claude.json` as hal-9000 wants it (onboarding, trust, the shared MCP servers, an API
  key) and ChromaDB's token beside it.

Every read and write here goes through `untrusted` (no links followed, nothing blocking,
sizes bounded), the shared home's included. Files are 0600 and the worker user's; writers
of any `.claude.json` take one lock. A file that is refused is logged and left alone: a
spawn, an import or a service change carries on without it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hal_common import credentials
from hal_common.credentials import Credential
from hal_common.layout import ParentLayout
from parent_agent.adapters import untrusted
from parent_agent.core import claude_state
from parent_agent.core.claude_state import (
    CREDENTIALS,
    EMPTY_CREDENTIALS,
    PLACEHOLDERS,
    SHARED_DIRS,
    SHARED_FILES,
)

log = logging.getLogger(__name__)

STATE = ".claude.json"
AUTH_META = ".hal-auth.json"  # kind, source, time and fingerprint of the last import
MCP_MANAGED = ".hal-mcp.json"  # every mcpServers name hal-9000 ever wrote
CHROMA_TOKEN = ".hal-chroma-token"  # noqa: S105 - a file name; ChromaDB's token, for clients in workers
MANAGED_SETTINGS = "managed-settings.json"
STATE_LIMIT = 64 << 20  # Claude's .claude.json grows with projects; beyond this it is refused

Owner = tuple[int, int]


def default_owner(home: Path, host_uid: int, host_gid: int) -> Owner:
    """The worker user: the home's owner once a worker ran, else the host user claudy named."""
    try:
        st = home.lstat()
        if st.st_uid != 0:
            return st.st_uid, st.st_gid
    except FileNotFoundError:
        pass
    return host_uid, host_gid


@contextmanager
def _state_lock(lock_dir: Path) -> Iterator[None]:
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "claude-state.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def _load(fd: int, name: str, limit: int = STATE_LIMIT) -> dict[str, Any] | None:
    """A JSON object file: {} when absent, None when refused or not an object (left alone)."""
    try:
        raw = untrusted.read(fd, name, limit)
    except OSError as e:
        log.warning("leaving %s alone: %s", name, e)
        return None
    if raw is None:
        return {}
    try:
        doc = json.loads(raw or b"{}")
    except ValueError as e:
        log.warning("leaving %s alone: not JSON (%s)", name, e)
        return None
    return doc if isinstance(doc, dict) else None


# -- the shared home ---------------------------------------------------------------------------


def ensure_home(home: Path, uid: int, gid: int) -> None:
    """The shared home exists, 0700 and uid:gid's, with every file and directory workers
    mount from it (placeholders: `{}`, an empty CLAUDE.md, empty directories). Something
    else at one of those names (a link planted when workers shared this directory) is moved
    aside, so that the mounts never take it."""
    owner = (uid, gid)
    with untrusted.directory(home, create=True, owner=owner) as fd:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != owner:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o700)
        wanted = {**PLACEHOLDERS, CREDENTIALS: EMPTY_CREDENTIALS}
        for name in (*SHARED_FILES, CREDENTIALS):
            _ensure(fd, name, owner, wanted[name])
        for name in SHARED_DIRS:
            _ensure(fd, name, owner, None)
        for name in (*SHARED_FILES, CREDENTIALS, *SHARED_DIRS):  # the worker user's (lchown)
            found = untrusted.lstat(fd, name)
            if found is not None and (found.st_uid, found.st_gid) != owner:
                os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)


def _ensure(fd: int, name: str, owner: Owner, default: bytes | None) -> None:
    """A file (`default`: its first content) or a directory (None) exists at `name`, made
    when absent; what else is there is moved aside (renamed: never followed)."""

    def make() -> None:
        if default is None:
            untrusted.ensure_dir(fd, name, owner)
        else:
            untrusted.ensure_file(fd, name, default, owner)

    try:
        make()
    except untrusted.Refused as e:
        aside = untrusted.move_aside(fd, name)
        log.warning("%s: moved to %s", e, aside)
        make()


def read_state(home: Path) -> dict[str, Any] | None:
    """The base state (the shared `.claude.json`): {} when absent, None when unreadable."""
    try:
        with untrusted.directory(home) as fd:
            return _load(fd, STATE)
    except FileNotFoundError:
        return {}
    except OSError as e:
        log.warning("leaving %s alone: %s", home, e)
        return None


def update_state(
    home: Path,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    uid: int,
    gid: int,
    lock_dir: Path,
) -> bool:
    """Apply `change` to the shared `.claude.json` under the lock; True when it changed."""
    with _state_lock(lock_dir), untrusted.directory(home, create=True, owner=(uid, gid)) as fd:
        return _update(fd, STATE, change, (uid, gid))


def _update(
    fd: int, name: str, change: Callable[[dict[str, Any]], dict[str, Any]], owner: Owner
) -> bool:
    state = _load(fd, name)
    if state is None:
        return False
    wanted = change(state)
    if wanted == state and untrusted.lstat(fd, name) is not None:
        return False
    try:
        untrusted.write(fd, name, _json(wanted), owner)
    except OSError as e:
        log.warning("leaving %s alone: %s", name, e)
        return False
    return True


def write_file(home: Path, name: str, data: bytes, uid: int, gid: int) -> None:
    """One of hal-9000's files in the shared home, written whole (0600, uid:gid)."""
    with untrusted.directory(home, create=True, owner=(uid, gid)) as fd:
        untrusted.write(fd, name, data, (uid, gid))


def read_json(home: Path, name: str) -> dict[str, Any]:
    """A JSON object of hal-9000's in the shared home; {} when absent or refused."""
    try:
        with untrusted.directory(home) as fd:
            return _load(fd, name, untrusted.MAX_BYTES) or {}
    except OSError:
        return {}


def _managed_names(home: Path) -> list[str]:
    try:
        with untrusted.directory(home) as fd:
            raw = untrusted.read(fd, MCP_MANAGED)
        names = json.loads(raw or b"[]")
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _remember(home: Path, mcp: Mapping[str, Any], owner: Owner) -> list[str]:
    """The MCP server names hal-9000 wrote before (so that stale ones are removed), and
    `mcp`'s added to them for next time."""
    managed = _managed_names(home)
    names = sorted(set(managed) | set(mcp))
    if names != sorted(managed):
        try:
            write_file(home, MCP_MANAGED, json.dumps(names).encode(), *owner)
        except OSError as e:
            log.warning("leaving %s alone: %s", MCP_MANAGED, e)
    return managed


def write_managed_settings(layout: ParentLayout) -> None:
    """hal-9000's managed settings, which workers mount read-only at /etc/claude-code."""
    d = layout.managed_dir
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o755)
    with untrusted.directory(d) as fd:
        data = _json(claude_state.MANAGED_SETTINGS)
        if untrusted.read(fd, MANAGED_SETTINGS) != data:
            untrusted.write(
                fd, MANAGED_SETTINGS, data, (0, 0) if os.geteuid() == 0 else _me(), 0o644
            )


def _me() -> Owner:
    return os.getuid(), os.getgid()


# -- each worker's private state ----------------------------------------------------------------


def worker_sessions(layout: ParentLayout) -> list[str]:
    """The sessions that have a private state (running or not)."""
    try:
        return sorted(
            e.name
            for e in os.scandir(layout.data_dir / "workers")
            if e.is_dir(follow_symlinks=False)
        )
    except FileNotFoundError:
        return []


def prepare_worker(
    layout: ParentLayout,
    session: str,
    project: str,
    uid: int,
    gid: int,
    mcp: Mapping[str, Mapping[str, Any]] | None,
    token: str | None,
) -> None:
    """Before a worker starts: the shared home and the managed settings in place, and its
    private state made (0700, uid:gid's; first seeded from the base state, so an older
    parent's trust, MCP servers and theme carry over), with the mount points of the shared
    config, and its `.claude.json` as hal-9000 wants it for `project`."""
    ensure_home(layout.claude_home, uid, gid)
    write_managed_settings(layout)
    base_dir = layout.worker_state(session).parent
    base_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    base_dir.mkdir(mode=0o700, exist_ok=True)
    with _state_lock(layout.lock_dir):
        owner = (uid, gid)
        base = read_state(layout.claude_home) or {}
        managed = _remember(layout.claude_home, mcp or {}, owner)
        key = _api_key(base)
        with untrusted.directory(layout.worker_state(session), create=True, owner=owner) as fd:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o700)
            for name in (*SHARED_FILES, CREDENTIALS):  # mount points: plain empty files
                _ensure(fd, name, owner, b"")
            for name in SHARED_DIRS:
                _ensure(fd, name, owner, None)
            _update_worker(fd, session, base, project, mcp, managed, key, owner)
            _share_token(fd, session, token, owner)


def _api_key(base: Mapping[str, Any]) -> str | None:
    key = base.get("primaryApiKey")
    return key if isinstance(key, str) else None


def _update_worker(
    fd: int,
    session: str,
    base: Mapping[str, Any],
    project: str | None,
    mcp: Mapping[str, Mapping[str, Any]] | None,
    managed: list[str],
    api_key: str | bool | None,
    owner: Owner,
) -> bool:
    exists = untrusted.lstat(fd, STATE) is not None
    mine = _load(fd, STATE)
    if mine is None:
        log.warning("worker %s: its %s is left alone (see above)", session, STATE)
        return False
    wanted = claude_state.worker_state(
        mine if exists else None, base, project, mcp, managed, api_key
    )
    if exists and wanted == mine:
        return False
    try:
        untrusted.write(fd, STATE, _json(wanted), owner)
    except OSError as e:
        log.warning("worker %s: leaving %s alone: %s", session, STATE, e)
        return False
    return True


def _share_token(fd: int, session: str, token: str | None, owner: Owner) -> None:
    """ChromaDB's token where clients in the worker read it (0600, the worker user's)."""
    try:
        if token is None:
            st = untrusted.lstat(fd, CHROMA_TOKEN)
            if st is not None:
                untrusted.read(fd, CHROMA_TOKEN, 4096)  # refused unless a plain file
                untrusted.unlink(fd, CHROMA_TOKEN)
        elif (untrusted.read(fd, CHROMA_TOKEN, 4096) or b"").strip() != token.encode():
            untrusted.write(fd, CHROMA_TOKEN, token.encode(), owner)
    except OSError as e:
        log.warning("worker %s: leaving %s alone: %s", session, CHROMA_TOKEN, e)


def _each_worker(layout: ParentLayout, act: Callable[[int, str, Owner], None]) -> None:
    """`act(fd, session, owner)` on every worker's private state; one that is refused (or
    fails) is logged and skipped."""
    for session in worker_sessions(layout):
        try:
            with untrusted.directory(layout.worker_state(session)) as fd:
                act(fd, session, untrusted.owner_of(fd))
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("worker %s: its state is left alone: %s", session, e)


def publish_services(
    layout: ParentLayout, mcp: Mapping[str, Mapping[str, Any]], token: str | None
) -> None:
    """What workers need to use the shared services: the MCP servers in every worker's
    `.claude.json` (running ones too: `claude mcp list` reads it on every call, Claude Code
    at its start), and ChromaDB's token beside it (None: removed)."""
    home = layout.claude_home
    uid, gid = default_owner(home, layout.host_uid, layout.host_gid)
    with _state_lock(layout.lock_dir):
        managed = _remember(home, mcp, (uid, gid))
        base = read_state(home) or {}

        def act(fd: int, session: str, owner: Owner) -> None:
            _update_worker(fd, session, base, None, mcp, managed, None, owner)
            _share_token(fd, session, token, owner)

        _each_worker(layout, act)
    try:  # the token no longer lives in the shared home
        with untrusted.directory(home) as fd:
            untrusted.unlink(fd, CHROMA_TOKEN)
    except OSError:
        pass


def store_credential(layout: ParentLayout, cred: Credential, uid: int, gid: int) -> None:
    """Put an imported credential where Claude Code reads it; the other kind is removed.

    OAuth: the one shared `.credentials.json`, rewritten in place (workers have it
    bind-mounted; the inode stays). An API key: the base state's `primaryApiKey` and every
    worker's, and the shared credentials file is emptied to `{}`."""
    home, owner = layout.claude_home, (uid, gid)
    ensure_home(home, uid, gid)
    if cred.kind == "api-key":
        doc: dict[str, Any] | None = None
        access = cred.secret
        key: str | bool = cred.secret
    else:
        doc = (
            credentials.parse_oauth(cred.secret, cred.source)
            if cred.kind == "oauth"
            else credentials.token_document(cred.secret)
        )
        access = doc["claudeAiOauth"]["accessToken"]
        key = False
    with untrusted.directory(home) as fd:
        untrusted.overwrite(fd, CREDENTIALS, _json(doc) if doc else EMPTY_CREDENTIALS, owner)
    with _state_lock(layout.lock_dir):
        with untrusted.directory(home) as fd:
            if isinstance(key, str):
                _update(fd, STATE, lambda s: {**s, "primaryApiKey": key}, owner)
            else:
                _update(
                    fd, STATE, lambda s: {k: v for k, v in s.items() if k != "primaryApiKey"}, owner
                )
        base = read_state(home) or {}

        def act(fd: int, session: str, owner: Owner) -> None:
            _update_worker(fd, session, base, None, None, [], key, owner)

        _each_worker(layout, act)
    meta = {
        "kind": cred.kind,
        "source": cred.source,
        "imported_at": time.time(),
        "fingerprint": cred.fingerprint(),
        "access_print": credentials.fingerprint(access),
    }
    write_file(home, AUTH_META, _json(meta), uid, gid)


def auth_status(home: Path) -> dict[str, Any]:
    """What is imported, from where, and when it expires: never the secret itself."""
    meta = read_json(home, AUTH_META)
    doc: dict[str, Any] | None = None
    current = ""
    try:
        with untrusted.directory(home) as fd:
            raw = untrusted.read(fd, CREDENTIALS)
        text = (raw or b"").decode()
        if text.strip() and json.loads(text) not in ({}, None):
            doc = credentials.parse_oauth(text, CREDENTIALS)
            current = doc["claudeAiOauth"]["accessToken"]
    except FileNotFoundError:
        doc = None
    except (OSError, ValueError, credentials.CredentialError) as e:
        return {**_empty(meta), "error": f"{home / CREDENTIALS}: {e}"}
    state = read_state(home) or {}
    api_key = state.get("primaryApiKey")
    out = credentials.summary(doc, isinstance(api_key, str))
    if doc is not None and meta.get("access_print"):
        # an OAuth access token is refreshed (and its refresh token rotated) by whichever
        # worker needs it first: the token then differs from the one imported
        out["refreshed_since_import"] = meta["access_print"] != credentials.fingerprint(current)
    return {
        **out,
        "kind": meta.get("kind", "api-key" if api_key else ("oauth" if doc else None)),
        "source": meta.get("source"),
        "imported_at": meta.get("imported_at"),
        "fingerprint": meta.get("fingerprint"),
    }


def _empty(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "present": False,
        "kind": meta.get("kind"),
        "source": meta.get("source"),
        "imported_at": meta.get("imported_at"),
        "expires_at": None,
    }
