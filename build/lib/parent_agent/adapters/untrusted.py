"""Reads and writes in trees a worker can write, without ever following its links.

A worker owns its private Claude state and can write the shared credentials file; the shared
Claude home is treated the same way (defence in depth). Whatever it planted there, the parent:

- walks directories from a trusted root, one component at a time, each opened with
  `O_DIRECTORY|O_NOFOLLOW` relative to the one before (a directory symlink anywhere in the
  path is refused, `ELOOP`/`ENOTDIR`);
- opens files with `O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC` (a FIFO never blocks the open) and reads
  them only when `fstat` says: a regular file, one link (`st_nlink == 1`), within a size limit;
- writes a file whole into a temp file inside the verified directory fd (owner and mode set
  on the fd before a byte is written), then renames it over the name, which must be absent
  or a regular file of one link; or, for a file bind-mounted into workers (its inode must
  stay), rewrites it in place through the same checks.

What is refused raises `Refused` (an `OSError`): callers log it and leave the file alone.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

MAX_BYTES = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_WRITE = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class Refused(OSError):
    """A path the parent will not read or write: a link, not a regular file, too big."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(errno.EPERM, f"{where}: {why}")
        self.where = where
        self.why = why

    def __str__(self) -> str:
        return f"refused {self.where}: {self.why}"


def _parts(rel: str | PurePosixPath) -> tuple[str, ...]:
    parts = PurePosixPath(rel).parts
    if any(p in ("", ".", "..", "/") for p in parts):
        raise Refused(str(rel), "not a plain relative path")
    return parts


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def open_root(root: Path, create: bool = False, owner: tuple[int, int] | None = None) -> int:
    """An fd of `root`, a trusted path whose last component must not be a symlink.
    `create`: made (parents too, the parent's own) 0700, owned by `owner`."""
    if create:
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(root, 0o700)
            if owner is not None:
                os.chown(root, *owner, follow_symlinks=False)
        except FileExistsError:
            pass
    try:
        return os.open(root, _DIR)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(str(root), "not a directory (a symlink?)") from None
        raise


def open_dir(
    dir_fd: int,
    rel: str | PurePosixPath,
    create: bool = False,
    owner: tuple[int, int] | None = None,
    mode: int = 0o755,
) -> int:
    """An fd of `rel` under `dir_fd`, walked one component at a time without following links.
    `create`: missing components are made (`mode`, owned by `owner`)."""
    fd = os.dup(dir_fd)
    try:
        for part in _parts(rel):
            try:
                nxt = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
                nxt = os.open(part, _DIR, dir_fd=fd)
                if owner is not None:
                    os.fchown(nxt, *owner)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Refused(f"{rel}", f"{part} is not a directory (a symlink?)") from None
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def directory(
    root: Path,
    rel: str | PurePosixPath = "",
    create: bool = False,
    owner: tuple[int, int] | None = None,
) -> Iterator[int]:
    """`root/rel` as a verified directory fd (closed afterwards)."""
    top = open_root(root, create, owner)
    try:
        if not str(rel) or str(rel) == ".":
            yield top
            return
        fd = open_dir(top, rel, create, owner)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        os.close(top)


def lstat(dir_fd: int, name: str) -> os.stat_result | None:
    """The entry itself (never what it points to); None when absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _check_regular(st: os.stat_result, where: str, limit: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise Refused(where, _describe(st.st_mode))
    if st.st_nlink != 1:
        raise Refused(where, f"a hard link ({st.st_nlink} names)")
    if limit is not None and st.st_size > limit:
        raise Refused(where, f"{st.st_size} bytes, over the limit of {limit}")


def _open_file(dir_fd: int, name: str, flags: int) -> int:
    """Open `name` without following it, never blocking; a device, FIFO or socket seen by
    `lstat` first is not even opened (the `fstat` after the open is what decides)."""
    _parts(name)
    st = lstat(dir_fd, name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise Refused(name, _describe(st.st_mode))
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Refused(name, "a symlink") from None
        if e.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing with no reader
            raise Refused(name, "a socket or FIFO") from None
        raise


def read(dir_fd: int, name: str, limit: int = MAX_BYTES) -> bytes | None:
    """The bytes of `name` in `dir_fd`; None when absent; `Refused` unless it is a regular
    file of one link and at most `limit` bytes."""
    try:
        fd = _open_file(dir_fd, name, _READ)
    except FileNotFoundError:
        return None
    try:
        _check_regular(os.fstat(fd), name, limit)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Refused(name, f"grew over the limit of {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_file(root: Path, rel: str, limit: int = MAX_BYTES) -> bytes | None:
    """`read` of `root/rel`, its directories walked without following links; None when it
    (or a directory on the way) is absent."""
    parts = _parts(rel)
    try:
        with directory(root, PurePosixPath(*parts[:-1]) if len(parts) > 1 else "") as fd:
            return read(fd, parts[-1], limit)
    except FileNotFoundError:
        return None


def write(dir_fd: int, name: str, data: bytes, owner: tuple[int, int], mode: int = 0o600) -> None:
    """Replace `name` in `dir_fd` whole: a temp file beside it (owner and mode set before
    the data), then a rename. `Refused` when `name` is there but not a regular file of one
    link (then it is left as it is)."""
    _parts(name)
    st = lstat(dir_fd, name)
    if st is not None:
        _check_regular(st, name, None)
    tmp = f".{name}.hal-{secrets.token_hex(4)}"
    fd = os.open(
        tmp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
        dir_fd=dir_fd,
    )
    try:
        try:
            os.fchown(fd, *owner)
            os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def overwrite(
    dir_fd: int, name: str, data: bytes, owner: tuple[int, int], mode: int = 0o600
) -> None:
    """Rewrite `name` in place, keeping its inode (a file bind-mounted into workers: a
    rename would leave them the old one). Made when absent; `Refused` unless it is a
    regular file of one link."""
    try:
        fd = _open_file(dir_fd, name, _WRITE | os.O_CREAT | os.O_EXCL)
        os.fchmod(fd, 0o600)  # before any byte, whatever the umask made of it
    except FileExistsError:
        fd = _open_file(dir_fd, name, _WRITE)
    try:
        _check_regular(os.fstat(fd), name, None)
        os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        os.ftruncate(fd, 0)
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def ensure_file(
    dir_fd: int, name: str, default: bytes, owner: tuple[int, int], mode: int = 0o600
) -> bool:
    """`name` exists as a regular file (made with `default` when absent). True when made.
    `Refused` when something else is there."""
    st = lstat(dir_fd, name)
    if st is None:
        try:
            overwrite(dir_fd, name, default, owner, mode)
        except FileExistsError:  # made meanwhile
            return False
        return True
    _check_regular(st, name, None)
    return False


def ensure_dir(dir_fd: int, name: str, owner: tuple[int, int], mode: int = 0o755) -> bool:
    """`name` exists as a directory (not a link to one). True when made."""
    st = lstat(dir_fd, name)
    if st is None:
        os.mkdir(name, mode, dir_fd=dir_fd)
        fd = open_dir(dir_fd, name)
        try:
            os.fchown(fd, *owner)
        finally:
            os.close(fd)
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(name, _describe(st.st_mode))
    return False


def move_aside(dir_fd: int, name: str) -> str:
    """Rename `name` (whatever it is) out of the way, in the same directory; its new name."""
    aside = f"{name}.hal-refused-{secrets.token_hex(3)}"
    os.rename(name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    return aside


def unlink(dir_fd: int, name: str) -> None:
    """Remove the entry `name` (a link is removed, never followed); absent is fine."""
    _parts(name)
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)


def owner_of(dir_fd: int) -> tuple[int, int]:
    st = os.fstat(dir_fd)
    return st.st_uid, st.st_gid
