"""Packing the host's Claude config for `claudy sync` (and the first `claudy`).

What goes: `settings.json`, `CLAUDE.md`, `agents/`, `commands/`, `skills/`, `plugins/`
(installed plugins and marketplace registrations) and a few keys of `~/.claude.json`
(the account shown in Claude's header, the theme). Credentials and history do not.
The host's files are only read; symlinks are followed (dotfile managers link them),
but never outside what is listed. Plugin registries name the host's absolute paths,
so those are rewritten to the worker's Claude home.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

from hal_common.errors import UsageError
from hal_common.layout import WORKER_CLAUDE_HOME
from hal_common.protocol import SYNC_DIRS, SYNC_FILES, SYNC_HOST_STATE, SYNC_STATE_KEYS

SKIP_DIRS = {".git", "node_modules", "__pycache__"}
MAX_TOTAL = 512 * 1024 * 1024


def members(claude_dir: Path) -> Iterator[tuple[str, Path]]:
    """(relative name, host path) of every file to copy, in a stable order."""
    for name in SYNC_FILES:
        p = claude_dir / name
        if p.is_file():
            yield name, p
    for name in SYNC_DIRS:
        top = claude_dir / name
        if not top.is_dir():
            continue
        for root, dirs, files in os.walk(top, followlinks=True):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for f in sorted(files):
                p = Path(root) / f
                if p.is_file():
                    yield str(p.relative_to(claude_dir)), p


def rewrite(rel: str, data: bytes, host_dir: Path) -> bytes:
    """Plugin registries hold the host's absolute paths: point them at the worker's home."""
    if rel.startswith("plugins/") and rel.endswith(".json"):
        return data.replace(str(host_dir).encode(), WORKER_CLAUDE_HOME.encode())
    return data


def host_state(state_path: Path) -> dict[str, object]:
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    return {k: state[k] for k in SYNC_STATE_KEYS if k in state}


def pack(claude_dir: Path, state_path: Path) -> tuple[bytes, int]:
    """A tar of the config to copy, and how many files it holds."""
    buf = io.BytesIO()
    total = count = 0
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, p in members(claude_dir):
            try:
                data = rewrite(rel, p.read_bytes(), claude_dir)
                mode = p.stat().st_mode & 0o755
            except OSError as e:
                raise UsageError(f"cannot read {p}: {e.strerror}") from None
            total += len(data)
            if total > MAX_TOTAL:
                raise UsageError(
                    f"{claude_dir} holds more than {MAX_TOTAL >> 20} MB to copy",
                    hint="remove unused plugins or marketplaces from the host first",
                )
            _add(tar, rel, data, mode)
            count += 1
        _add(tar, SYNC_HOST_STATE, json.dumps(host_state(state_path)).encode(), 0o600)
    return buf.getvalue(), count


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode | 0o600
    tar.addfile(info, io.BytesIO(data))
