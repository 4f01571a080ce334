"""The quick entry's hint file: written by the full path, read by `claudy DIR`'s quick entry.

One file per environment (`fastpath.hint_key`), in the user's cache directory
($XDG_CACHE_HOME/hal9000, else ~/.cache/hal9000). It is only a cache: a hint that is missing,
unreadable, of another version, or whose stamps or environment no longer match is no hint,
and claudy takes the full path (which writes a fresh one). Standard library only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping

from host_shim.core.hint import Hint, Stamp, env_subset, hint_key

Stamps = tuple[tuple[str, Stamp], ...]


def hint_dir(env: Mapping[str, str]) -> str:
    cache = env.get("XDG_CACHE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(cache, "hal9000")


def stamp(path: str) -> Stamp:
    """What changes when `path` is written, replaced, touched or removed (None: absent)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def stamps(paths: Iterable[str]) -> Stamps:
    return tuple((p, stamp(p)) for p in paths)


def tree(top: str) -> list[str]:
    """`top` and, for a directory, every directory and file under it (no bytecode caches):
    a file added or removed changes its directory's stamp, an edit the file's own."""
    out = [top]
    if not os.path.isdir(top):
        return out
    for d, dirs, files in os.walk(top):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        out.extend(os.path.join(d, x) for x in dirs)
        out.extend(os.path.join(d, f) for f in sorted(files) if not f.endswith(".pyc"))
    return out


def load_hint(env: Mapping[str, str]) -> Hint | None:
    """This environment's hint while everything it was derived from is unchanged."""
    try:
        with open(os.path.join(hint_dir(env), hint_key(env)), encoding="utf-8") as f:
            hint = Hint.loads(f.read())
    except (OSError, UnicodeDecodeError):
        return None
    if hint is None or hint.env != env_subset(env):
        return None
    if any(stamp(p) != s for p, s in hint.stamps):
        return None
    return hint


def save_hint(env: Mapping[str, str], hint: Hint) -> None:
    """Write the hint (atomically; a cache: failing to write it changes nothing else)."""
    d = hint_dir(env)
    path = os.path.join(d, hint_key(env))
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(hint.to_json())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def forget_hint(env: Mapping[str, str]) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(hint_dir(env), hint_key(env)))
