"""Applying the host's Claude config (a tar from claudy) to the shared Claude home.

A manifest (`.hal-sync.json`) remembers the hash of every file as last copied. A file that
still has that hash inside is the host's to update; one that differs was changed inside,
and is kept unless the user forces it: `sync` says which. Files that exist only inside are
never touched, and nothing is deleted.

The shared home is written only by the parent, yet every read and write here goes through
`untrusted` (defence in depth: it was worker-writable once): a file, or a directory on its
way, that is a link or not a regular file is refused, reported and left alone.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import logging
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hal_common.errors import UsageError
from hal_common.protocol import SYNC_HOST_STATE, SYNC_TOPS
from parent_agent.adapters import claude_home, untrusted
from parent_agent.core.claude_state import PLACEHOLDERS, SHARED_FILES

MANIFEST = ".hal-sync.json"
HOST_STATE = SYNC_HOST_STATE  # the archive's layout is the protocol's (claudy packs it)
ALLOWED_TOPS = SYNC_TOPS
FILE_LIMIT = 256 << 20  # a file inside bigger than this is refused (left alone)

log = logging.getLogger(__name__)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Plan:
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # changed inside: not overwritten
    forced: list[str] = field(default_factory=list)  # changed inside, overwritten (--force)
    diffs: dict[str, list[str]] = field(default_factory=dict)  # kept file → a short diff
    refused: list[str] = field(default_factory=list)  # a link or special file: left alone

    def writes(self) -> list[str]:
        return [*self.new, *self.updated, *self.forced]


def plan(
    incoming: dict[str, str],
    inside: dict[str, str | None],
    manifest: dict[str, str],
    force: bool = False,
) -> Plan:
    """What to do with each incoming file, from three hashes (pure)."""
    p = Plan()
    for rel in sorted(incoming):
        theirs, mine, last = incoming[rel], inside.get(rel), manifest.get(rel)
        if mine is None:
            p.new.append(rel)
        elif mine == theirs:
            p.unchanged.append(rel)
        elif mine == last:
            p.updated.append(rel)
        elif force:
            p.forced.append(rel)
        else:
            p.kept.append(rel)
    return p


def safe_name(name: str) -> str:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UsageError(f"refusing {name!r} in the sync archive")
    if rel.parts[0] not in ALLOWED_TOPS and name != HOST_STATE:
        raise UsageError(f"refusing {name!r}: not a config file sync copies")
    return str(rel)


def read_archive(data: bytes) -> tuple[dict[str, tuple[bytes, int]], dict[str, Any]]:
    """Files (name → (bytes, mode)) and the host's state keys, from claudy's tar."""
    files: dict[str, tuple[bytes, int]] = {}
    state: dict[str, Any] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                name = safe_name(m.name)
                fh = tar.extractfile(m)
                body = fh.read() if fh is not None else b""
                if name == HOST_STATE:
                    loaded = json.loads(body or b"{}")
                    state = loaded if isinstance(loaded, dict) else {}
                else:
                    files[name] = (body, m.mode & 0o755)
    except (tarfile.TarError, ValueError) as e:
        raise UsageError(f"the sync archive is unreadable: {e}") from None
    return files, state


def load_manifest(home: Path) -> dict[str, Any]:
    return claude_home.read_json(home, MANIFEST)


def _inside(home: Path, rel: str) -> bytes | None:
    """The file inside as it is (None: absent); `Refused` for a link or special file."""
    try:
        return untrusted.read_file(home, rel, FILE_LIMIT)
    except NotADirectoryError:
        raise untrusted.Refused(rel, "a directory on its way is not one") from None
    except IsADirectoryError:
        raise untrusted.Refused(rel, "a directory") from None


def apply(
    home: Path,
    data: bytes,
    uid: int,
    gid: int,
    lock_dir: Path,
    force: bool = False,
    dry_run: bool = False,
) -> Plan:
    files, state = read_archive(data)
    manifest = load_manifest(home)
    hashes: dict[str, str] = dict(manifest.get("files") or {})
    inside: dict[str, str | None] = {}
    bodies: dict[str, bytes] = {}
    refused: list[str] = []
    for rel in files:
        try:
            body = _inside(home, rel)
        except OSError as e:
            log.warning("sync: %s", e)
            refused.append(rel)
            continue
        if body == PLACEHOLDERS.get(rel) and rel not in hashes:
            body = None  # the empty placeholder a spawn made: as good as absent
        inside[rel] = None if body is None else digest(body)
        if body is not None:
            bodies[rel] = body
    incoming = {rel: digest(body) for rel, (body, _mode) in files.items() if rel not in refused}
    p = plan(incoming, inside, hashes, force)
    p.refused = sorted(refused)
    for rel in p.kept:
        p.diffs[rel] = short_diff(rel, bodies[rel], files[rel][0])
    if dry_run:
        return p
    claude_home.ensure_home(home, uid, gid)
    for rel in list(p.writes()):
        body, mode = files[rel]
        try:
            _write(home, rel, body, mode, uid, gid)
        except OSError as e:
            log.warning("sync: %s", e)
            for done in (p.new, p.updated, p.forced):
                if rel in done:
                    done.remove(rel)
            p.refused.append(rel)
    for rel in [*p.writes(), *p.unchanged]:
        hashes[rel] = incoming[rel]
    if state:
        claude_home.update_state(home, lambda s: {**state, **s}, uid, gid, lock_dir)  # inside wins
    doc = {"files": hashes, "synced_at": time.time()}
    claude_home.write_file(home, MANIFEST, json.dumps(doc, indent=1).encode(), uid, gid)
    return p


def short_diff(rel: str, inside: bytes, host: bytes, most: int = 12) -> list[str]:
    """What differs, as a unified diff cut to `most` lines (none for binary files)."""
    try:
        a, b = inside.decode().splitlines(), host.decode().splitlines()
    except UnicodeDecodeError:
        return ["(binary: differs)"]
    lines = list(difflib.unified_diff(a, b, f"inside/{rel}", f"host/{rel}", lineterm="", n=1))
    return lines[:most] + ([f"… {len(lines) - most} more lines"] if len(lines) > most else [])


def _write(home: Path, rel: str, body: bytes, mode: int, uid: int, gid: int) -> None:
    """One file into the shared home, its directories made and walked without following a
    link. settings.json and CLAUDE.md are rewritten in place: workers have them
    bind-mounted, and a rename would leave them the old copy."""
    parts = PurePosixPath(rel).parts
    owner = (uid, gid)
    with untrusted.directory(home) as top:
        fd = untrusted.open_dir(top, PurePosixPath(*parts[:-1]), True, owner) if parts[:-1] else top
        try:
            if len(parts) == 1 and parts[0] in SHARED_FILES:
                untrusted.overwrite(fd, parts[-1], body, owner, mode | 0o600)
            else:
                untrusted.write(fd, parts[-1], body, owner, mode | 0o600)
        finally:
            if fd != top:
                os.close(fd)


def report(p: Plan, dry_run: bool = False) -> list[str]:
    verb = "would copy" if dry_run else "copied"
    lines = []
    if p.new:
        lines.append(f"{verb} {len(p.new)} new: {_few(p.new)}")
    if p.updated:
        done = "would update" if dry_run else "updated"
        lines.append(f"{done} {len(p.updated)}: {_few(p.updated)}")
    if p.forced:
        lines.append(f"overwrote {len(p.forced)} changed inside (--force): {_few(p.forced)}")
    if p.kept:
        lines.append(f"kept {len(p.kept)} changed inside, which differ from the host's:")
        for rel in p.kept:
            lines.append(f"  {rel}")
            lines.extend(f"    {d}" for d in p.diffs.get(rel, []))
        lines.append("  (claudy sync --force takes the host's copies)")
    if p.refused:
        lines.append(
            f"refused {len(p.refused)} (a link or special file inside, left alone): "
            f"{_few(p.refused)}"
        )
    lines.append(f"{len(p.unchanged)} unchanged")
    return lines


def _few(names: list[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
