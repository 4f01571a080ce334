"""The shared Claude home (`/config/claude`, every worker's `$CLAUDE_CONFIG_DIR`).

Everything hal-agent writes there goes through here: Claude's state file `.claude.json`
(onboarding, folder trust, the shared MCP servers, an imported API key) and the imported
credentials. Files are written whole (temp file, then rename), 0600 and owned by the
worker user; the directory is 0700. Writers of `.claude.json` take one lock, so a spawn,
an import and a service change never lose each other's edits.
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
from parent_agent.core.services import with_mcp

log = logging.getLogger(__name__)

STATE = ".claude.json"
CREDENTIALS = ".credentials.json"
AUTH_META = ".hal-auth.json"  # kind, source, time and fingerprint of the last import
MCP_MANAGED = ".hal-mcp.json"  # the names of the mcpServers entries hal-9000 wrote
CHROMA_TOKEN = ".hal-chroma-token"  # noqa: S105 - a file name; ChromaDB's token, for clients in workers
OWNED = (STATE, CREDENTIALS, AUTH_META, MCP_MANAGED, CHROMA_TOKEN)


def default_owner(home: Path, host_uid: int, host_gid: int) -> tuple[int, int]:
    """The worker user: the home's owner once a worker ran, else the host user claudy named."""
    try:
        st = home.stat()
        if st.st_uid != 0:
            return st.st_uid, st.st_gid
    except FileNotFoundError:
        pass
    return host_uid, host_gid


def ensure_home(home: Path, uid: int, gid: int) -> None:
    """The directory exists, is 0700, and it and hal-9000's files in it belong to uid:gid."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "plugins").mkdir(exist_ok=True)  # mounted read-only into workers: it must exist
    for path in (home, home / "plugins", *(home / n for n in OWNED)):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid, follow_symlinks=False)
    home.chmod(0o700)


def write_private(path: Path, data: bytes, uid: int, gid: int) -> None:
    """Write a file whole: 0600 from its first byte, owned by uid:gid, then renamed in place."""
    tmp = path.with_name(path.name + ".hal-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.fchown(fd, uid, gid)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@contextmanager
def _state_lock(lock_dir: Path) -> Iterator[None]:
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "claude-state.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_state(home: Path) -> dict[str, Any] | None:
    """`.claude.json`, {} when absent, None when unreadable (then it is left alone)."""
    try:
        state = json.loads((home / STATE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("leaving %s alone: %s", home / STATE, e)
        return None
    return state if isinstance(state, dict) else None


def update_state(
    home: Path,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    uid: int,
    gid: int,
    lock_dir: Path,
) -> bool:
    """Apply `change` to `.claude.json` under the lock; True when the file changed."""
    with _state_lock(lock_dir):
        state = read_state(home)
        if state is None:
            return False
        wanted = change(state)
        if wanted == state:
            return False
        write_private(home / STATE, (json.dumps(wanted, indent=2) + "\n").encode(), uid, gid)
        return True


def register_mcp(
    home: Path,
    entries: Mapping[str, Mapping[str, str]],
    uid: int,
    gid: int,
    lock_dir: Path,
) -> bool:
    """The shared MCP servers in `.claude.json` (user scope: what `claude mcp list` reads).

    Entries hal-9000 wrote before and no longer wants are removed; the user's own stay.
    """

    try:
        managed = list(json.loads((home / MCP_MANAGED).read_text()))
    except (OSError, ValueError, TypeError):
        managed = []
    ensure_home(home, uid, gid)
    changed = update_state(home, lambda s: with_mcp(s, entries, managed), uid, gid, lock_dir)
    if sorted(entries) != sorted(managed):
        write_private(home / MCP_MANAGED, json.dumps(sorted(entries)).encode(), uid, gid)
    return changed


def publish_services(
    home: Path,
    mcp: Mapping[str, Mapping[str, str]],
    token: str | None,
    lock_dir: Path,
    host_owner: tuple[int, int],
) -> None:
    """What workers need to use the shared services: the MCP servers registered in
    `.claude.json`, and ChromaDB's token beside it (None: removed). Workers started before
    see it too (Claude Code reads `.claude.json` when it starts, and `claude mcp list` on
    every call)."""
    uid, gid = default_owner(home, *host_owner)
    register_mcp(home, mcp, uid, gid, lock_dir)
    share_token(home, token, uid, gid)


def share_token(home: Path, token: str | None, uid: int, gid: int) -> None:
    """ChromaDB's token where clients in workers can read it (0600, the worker user's)."""
    path = home / CHROMA_TOKEN
    if token is None:
        path.unlink(missing_ok=True)
        return
    try:
        if path.read_text().strip() == token:
            return
    except FileNotFoundError:
        pass
    write_private(path, token.encode(), uid, gid)


def store_credential(home: Path, cred: Credential, uid: int, gid: int, lock_dir: Path) -> None:
    """Put an imported credential where Claude Code reads it; the other kind is removed."""
    ensure_home(home, uid, gid)
    if cred.kind == "api-key":
        update_state(home, lambda s: {**s, "primaryApiKey": cred.secret}, uid, gid, lock_dir)
        (home / CREDENTIALS).unlink(missing_ok=True)
        access = cred.secret
    else:
        doc = (
            credentials.parse_oauth(cred.secret, cred.source)
            if cred.kind == "oauth"
            else credentials.token_document(cred.secret)
        )
        access = doc["claudeAiOauth"]["accessToken"]
        write_private(home / CREDENTIALS, (json.dumps(doc, indent=2) + "\n").encode(), uid, gid)
        update_state(
            home, lambda s: {k: v for k, v in s.items() if k != "primaryApiKey"}, uid, gid, lock_dir
        )
    meta = {
        "kind": cred.kind,
        "source": cred.source,
        "imported_at": time.time(),
        "fingerprint": cred.fingerprint(),
        "access_print": credentials.fingerprint(access),
    }
    write_private(home / AUTH_META, (json.dumps(meta, indent=2) + "\n").encode(), uid, gid)


def auth_status(home: Path) -> dict[str, Any]:
    """What is imported, from where, and when it expires: never the secret itself."""
    try:
        meta = json.loads((home / AUTH_META).read_text())
    except (OSError, ValueError):
        meta = {}
    doc: dict[str, Any] | None
    current = ""
    try:
        raw = (home / CREDENTIALS).read_text()
        doc = credentials.parse_oauth(raw, CREDENTIALS)
        current = doc["claudeAiOauth"]["accessToken"]
    except FileNotFoundError:
        doc = None
    except (OSError, credentials.CredentialError) as e:
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
    return {"present": False, "kind": meta.get("kind"), "source": meta.get("source"),
            "imported_at": meta.get("imported_at"), "expires_at": None}  # fmt: skip
