"""Finding a project's repository root and reading its `.hal9000.toml` where no parent helps:
`config validate --project` on either side, and claudy's look at which image a project
wants before it hands over (the parent reads it again itself, through `untrusted`, and
decides; what claudy reads only picks which built-in image to build and load).

The file is worker-writable: the read follows no link at its last component, never blocks
on a FIFO, and is bounded.
"""

from __future__ import annotations

import errno
import os
import stat

from hal_common.errors import ConfigError
from hal_common.project_config import MAX_BYTES, PROJECT_FILE, ProjectFile, parse_project

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


def repo_root(project: str, roots: tuple[str, ...] = ()) -> str:
    """The repository `project` belongs to: the nearest directory at or above it holding a
    `.git` (a directory, or a worktree's file), never a root itself nor above one; else the
    project itself. Nothing is followed (`lexists`)."""
    here = project
    while True:
        if os.path.lexists(os.path.join(here, ".git")):
            return here
        up = os.path.dirname(here)
        inside = any(up.startswith(str(r).rstrip("/") + "/") for r in roots)
        if up == here or not inside:
            return project
        here = up


def read_bytes(path: str, limit: int = MAX_BYTES) -> bytes | None:
    """The bytes of `path` (None when absent); ConfigError unless a regular file of at most
    `limit` bytes that is not a link."""
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return None
    except OSError as e:
        why = "a symlink" if e.errno == errno.ELOOP else (e.strerror or str(e))
        raise ConfigError(f"{path}: not read: {why}", source=path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            raise ConfigError(
                f"{path}: not read: not a regular file of at most {limit // 1024} KiB",
                source=path,
            )
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError(f"{path}: not read: over {limit // 1024} KiB", source=path)
    return data


def load(directory: str, roots: tuple[str, ...] = ()) -> tuple[str, ProjectFile | None]:
    """(the repository's root, its project file parsed or None); ConfigError when bad."""
    root = repo_root(os.path.realpath(directory), roots)
    path = os.path.join(root, PROJECT_FILE)
    data = read_bytes(path)
    return root, None if data is None else parse_project(data, path)
