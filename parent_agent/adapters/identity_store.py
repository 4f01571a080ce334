"""Your identity in the parent: the host's git name and email, the imported GitHub token,
and each worker's copy of what it is given.

- The private store, `layout.identity_dir` (root's, 0700, never mounted): `git.json` (the
  host's `user.name` / `user.email`, as claudy last sent them) and `github-token` (0600).
- Per worker, in its run directory (`layout.worker_run`, root's, read-only in the worker at
  `/etc/hal/run`): `gitconfig` (0644; `GIT_CONFIG_SYSTEM` points at it) and, for a worker
  opted in to the token only, `github-token` (0400, the worker user's). Written before each
  start and rewritten in every worker when claudy sends a new identity or token (a
  directory mount: a running worker sees the new files at once).

Every file is written whole (a temp file, then a rename) through `untrusted`, which follows
no link.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from hal_common import identity
from hal_common.credentials import fingerprint
from hal_common.identity import GITCONFIG, GITHUB_TOKEN, GitIdentity, IdentityError
from hal_common.layout import ParentLayout
from parent_agent.adapters import untrusted

log = logging.getLogger(__name__)

GIT_FILE = "git.json"
GRANT_FILE = "grants.json"  # in a worker's run directory: its token grant and user (no secret)
TOKEN_META = "github-token.json"  # noqa: S105 - a file name: when it was imported, and its fingerprint (no secret)


def _mine() -> tuple[int, int]:
    """The parent's own user (root in the parent; the test runner in tests)."""
    return os.getuid(), os.getgid()


def _store(layout: ParentLayout) -> int:
    """The private store's directory fd (made root's, 0700, when missing)."""
    d = layout.identity_dir
    d.parent.mkdir(parents=True, exist_ok=True)
    fd = untrusted.open_root(d, create=True, owner=_mine())
    os.fchmod(fd, 0o700)
    return fd


def _read_store(layout: ParentLayout, name: str, limit: int) -> bytes | None:
    if not layout.identity_dir.is_dir():
        return None
    fd = _store(layout)
    try:
        return untrusted.read(fd, name, limit)
    finally:
        os.close(fd)


def _write_store(layout: ParentLayout, name: str, data: bytes) -> None:
    fd = _store(layout)
    try:
        untrusted.write(fd, name, data, _mine(), 0o600)
    finally:
        os.close(fd)


# -- the git identity ----------------------------------------------------------------------


def save_git(layout: ParentLayout, ident: GitIdentity) -> bool:
    """Keep the host's identity; whether it changed (then every worker's gitconfig is
    rewritten)."""
    if load_git(layout) == ident and _read_store(layout, GIT_FILE, identity.MAX_WIRE):
        return False
    _write_store(layout, GIT_FILE, ident.wire())
    return True


def load_git(layout: ParentLayout) -> GitIdentity:
    data = _read_store(layout, GIT_FILE, identity.MAX_WIRE)
    if not data:
        return GitIdentity()
    try:
        return identity.from_wire(data)
    except IdentityError as e:
        log.warning("ignoring %s: %s", GIT_FILE, e.message)
        return GitIdentity()


# -- the GitHub token ----------------------------------------------------------------------


def save_token(layout: ParentLayout, token: str) -> None:
    token = identity.check_token(token)
    _write_store(layout, GITHUB_TOKEN, token.encode())
    meta = {"imported_at": time.time(), "fingerprint": fingerprint(token)}
    _write_store(layout, TOKEN_META, json.dumps(meta).encode())


def load_token(layout: ParentLayout) -> str | None:
    data = _read_store(layout, GITHUB_TOKEN, identity.MAX_TOKEN + 1)
    if not data:
        return None
    try:
        return identity.check_token(data.decode("ascii", "replace"))
    except IdentityError as e:
        log.warning("ignoring the stored GitHub token: %s", e.message)
        return None


def remove_token(layout: ParentLayout) -> bool:
    """Forget the token (and take it from every worker); whether there was one."""
    had = load_token(layout) is not None
    if layout.identity_dir.is_dir():
        fd = _store(layout)
        try:
            for name in (GITHUB_TOKEN, TOKEN_META):
                if untrusted.lstat(fd, name) is not None:
                    untrusted.unlink(fd, name)
        finally:
            os.close(fd)
    return had


def token_status(layout: ParentLayout) -> dict[str, Any]:
    """Whether a token is imported, when, and its fingerprint: never the token."""
    meta: dict[str, Any] = {}
    raw = _read_store(layout, TOKEN_META, 4096)
    if raw:
        try:
            loaded = json.loads(raw)
            meta = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            meta = {}
    present = load_token(layout) is not None
    return {
        "present": present,
        "imported_at": meta.get("imported_at") if present else None,
        "fingerprint": meta.get("fingerprint") if present else None,
    }


# -- each worker's files -------------------------------------------------------------------


def write_worker(
    layout: ParentLayout,
    session: str,
    github: bool,
    owner: tuple[int, int],
    safe: tuple[str, ...] = (),
) -> bool:
    """A worker's `gitconfig` (with `safe`: its repository's paths git may trust) and, when
    it is opted in (`github`) and a token is imported, its `github-token` (0400, `owner`'s);
    a token file it may not have is removed. The grant is kept beside them (`grants.json`),
    so that a token imported later reaches it. Whether it got the token."""
    d = layout.worker_run(session)
    d.mkdir(mode=0o755, parents=True, exist_ok=True)
    token = load_token(layout) if github else None
    record = {"github_token": github, "uid": owner[0], "gid": owner[1], "safe": list(safe)}
    grant = json.dumps(record).encode()
    with untrusted.directory(d) as fd:
        if untrusted.read(fd, GRANT_FILE, 4096) != grant:
            untrusted.write(fd, GRANT_FILE, grant, _mine(), 0o644)
        if token is not None:
            untrusted.write(fd, GITHUB_TOKEN, token.encode(), owner, 0o400)
        elif untrusted.lstat(fd, GITHUB_TOKEN) is not None:
            untrusted.unlink(fd, GITHUB_TOKEN)
        text = identity.gitconfig_text(load_git(layout), github=token is not None, safe=safe)
        if untrusted.read(fd, GITCONFIG, 64 << 10) != text.encode():
            untrusted.write(fd, GITCONFIG, text.encode(), _mine(), 0o644)
    return token is not None


def _grant(
    layout: ParentLayout, session: str
) -> tuple[bool, tuple[int, int], tuple[str, ...]] | None:
    """A worker's recorded grant (`write_worker`); None when it has none (or a bad one)."""
    try:
        with untrusted.directory(layout.worker_run(session)) as fd:
            raw = untrusted.read(fd, GRANT_FILE, 4096)
        doc = json.loads(raw) if raw else None
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    uid, gid = doc.get("uid"), doc.get("gid")
    if not isinstance(uid, int) or not isinstance(gid, int):
        return None
    safe = doc.get("safe") or []
    if not isinstance(safe, list) or not all(isinstance(p, str) for p in safe):
        return None
    return doc.get("github_token") is True, (uid, gid), tuple(safe)


def refresh_workers(layout: ParentLayout) -> int:
    """After a new identity or token: every worker's files again, each with the grant it was
    started with (only opted-in workers get the token). How many were rewritten."""
    done = 0
    top = layout.workers_dir
    if not top.is_dir():
        return 0
    for entry in sorted(top.iterdir()):
        found = _grant(layout, entry.name)
        if found is None:
            continue  # never started by this hal-9000: its next start writes them
        try:
            write_worker(layout, entry.name, *found)
            done += 1
        except OSError as e:  # untrusted.Refused too
            log.warning("could not rewrite the identity of %s: %s", entry.name, e)
    return done
