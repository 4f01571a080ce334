"""Applying the host's Claude config (a tar from claudy) to the shared Claude home.

A manifest (`.hal-sync.json`) remembers the hash of every file as last copied. A file that
still has that hash inside is the host's to update; one that differs was changed inside,
and is kept unless the user forces it: `sync` says which. Files that exist only inside are
never touched, and nothing is deleted.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hal_common.errors import UsageError
from parent_agent.adapters import claude_home

MANIFEST = ".hal-sync.json"
HOST_STATE = ".hal-host-state.json"
ALLOWED_TOPS = {"settings.json", "CLAUDE.md", "agents", "commands", "skills", "plugins"}


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
    try:
        doc = json.loads((home / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


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
    for rel in files:
        try:
            inside[rel] = digest((home / rel).read_bytes())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            inside[rel] = None
    incoming = {rel: digest(body) for rel, (body, _mode) in files.items()}
    p = plan(incoming, inside, hashes, force)
    for rel in p.kept:
        p.diffs[rel] = short_diff(rel, (home / rel).read_bytes(), files[rel][0])
    if dry_run:
        return p
    claude_home.ensure_home(home, uid, gid)
    for rel in p.writes():
        body, mode = files[rel]
        _write(home, rel, body, mode, uid, gid)
    for rel in [*p.writes(), *p.unchanged]:
        hashes[rel] = incoming[rel]
    if state:
        claude_home.update_state(home, lambda s: {**state, **s}, uid, gid, lock_dir)  # inside wins
    doc = {"files": hashes, "synced_at": time.time()}
    claude_home.write_private(home / MANIFEST, json.dumps(doc, indent=1).encode(), uid, gid)
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
    target = home / rel
    parent = target.parent
    made: list[Path] = []
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    for d in reversed(made):
        d.mkdir(mode=0o755)
        os.chown(d, uid, gid)
    if target.is_symlink():
        target.unlink()
    tmp = target.with_name(target.name + ".hal-tmp")
    tmp.write_bytes(body)
    os.chown(tmp, uid, gid)
    tmp.chmod(mode | 0o600)
    os.replace(tmp, target)


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
    lines.append(f"{len(p.unchanged)} unchanged")
    return lines


def _few(names: list[str], n: int = 6) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
