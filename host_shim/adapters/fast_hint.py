"""The quick entry's hint file: written by the full path, read by `claudy DIR`'s quick entry.

One file per environment (`hint.hint_key`), in the user's cache directory
($XDG_CACHE_HOME/hal9000, else ~/.cache/hal9000), 0600 in a 0700 directory. It is only a
cache: a hint that is missing, unreadable, of another version, or whose stamps, environment
or resolved paths no longer match is no hint, and claudy takes the full path (which writes a
fresh one). A hint is used only when this user owns it and its directory and no one else may
write them (its argv is what claudy runs); none is written where another user owns the
directory (sudo). Built-ins only: this module is part of claudy's start-up.
"""

from __future__ import annotations

import os

from host_shim.core.hint import MAX_PROJECTS, Hint, Stamp, env_subset, hint_key

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

Stamps = tuple[tuple[str, Stamp], ...]


def hint_path(env: Mapping[str, str]) -> str:
    cache = env.get("XDG_CACHE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(cache, "hal9000", hint_key(env))


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


def _own(st: os.stat_result) -> bool:
    """This user's, and only this user's to write: the hint's argv is what claudy runs."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _ours_to_write(d: str) -> bool:
    """`d`, or the nearest of its parents that exists, is this user's: under sudo, root
    writes no hint into another user's home (where it would be root's, and in the way)."""
    while True:
        try:
            return os.lstat(d).st_uid == os.geteuid()
        except FileNotFoundError:
            parent = os.path.dirname(d)
            if parent == d:
                return False
            d = parent
        except OSError:
            return False


def load_hint(env: Mapping[str, str]) -> Hint | None:
    """This environment's hint, while everything it was derived from is unchanged."""
    path = hint_path(env)
    try:
        with open(path, "rb") as f:
            if not (_own(os.fstat(f.fileno())) and _own(os.lstat(os.path.dirname(path)))):
                return None
            hint = Hint.loads(f.read())
    except OSError:
        return None
    if hint is None or hint.env != env_subset(env):
        return None
    if any(stamp(p) != s for p, s in hint.stamps):
        return None
    if any(os.path.realpath(p) != real for p, real in hint.resolved):
        return None
    return hint


def save_hint(env: Mapping[str, str], hint: Hint) -> None:
    """Write `hint`, keeping the decisions of the hint it replaces when that one was derived
    from the same (atomically; a cache: failing to write it changes nothing else)."""
    path = hint_path(env)
    if not _ours_to_write(os.path.dirname(path)):
        return
    old = load_hint(env)
    if old is not None and old.same_but_projects(hint):
        merged = {**old.projects, **hint.projects}
        hint.projects = dict(list(merged.items())[-MAX_PROJECTS:])
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(hint.dumps())
        os.replace(tmp, path)
    except OSError:
        try:  # noqa: SIM105 - contextlib would cost claudy's start-up
            os.unlink(tmp)
        except OSError:
            pass


def forget_hint(env: Mapping[str, str]) -> None:
    try:  # noqa: SIM105 - contextlib would cost claudy's start-up
        os.unlink(hint_path(env))
    except OSError:
        pass
