"""No-follow, non-blocking, bounded reads and writes, on real files: each trap a worker can
plant is refused, and nothing outside is read or written."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from parent_agent.adapters import untrusted

ME = (os.getuid(), os.getgid())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    (d / "sub").mkdir(parents=True)
    (d / "ok.json").write_text("{}")
    (d / "sub" / "f").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("parent secret")
    return d


@pytest.fixture
def fd(tree: Path) -> Iterator[int]:
    with untrusted.directory(tree) as d:
        yield d


def outside(tree: Path) -> Path:
    return tree.parent / "outside"


def test_a_regular_file_is_read_and_written_whole(tree: Path, fd: int) -> None:
    assert untrusted.read(fd, "ok.json") == b"{}"
    assert untrusted.read(fd, "missing") is None
    untrusted.write(fd, "ok.json", b'{"a": 1}', ME, 0o600)
    assert (tree / "ok.json").read_bytes() == b'{"a": 1}'
    assert stat.S_IMODE((tree / "ok.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in tree.iterdir()) == ["ok.json", "sub"]  # no temp file left
    assert untrusted.read_file(tree, "sub/f") == b"x"
    assert untrusted.read_file(tree, "nope/f") is None


def test_a_symlinked_file_is_neither_read_nor_written_through(tree: Path, fd: int) -> None:
    (tree / "link").symlink_to(outside(tree) / "secret")
    with pytest.raises(untrusted.Refused, match="symlink"):
        untrusted.read(fd, "link")
    with pytest.raises(untrusted.Refused, match="symlink"):
        untrusted.write(fd, "link", b"planted", ME)
    with pytest.raises(untrusted.Refused, match="symlink"):
        untrusted.overwrite(fd, "link", b"planted", ME)
    assert (outside(tree) / "secret").read_text() == "parent secret"
    assert (tree / "link").is_symlink()  # left alone


def test_a_symlinked_directory_anywhere_on_the_path_is_refused(tree: Path, fd: int) -> None:
    (tree / "sub" / "dir").symlink_to(outside(tree))
    (tree / "top").symlink_to(outside(tree))
    for rel in ("sub/dir/secret", "top/secret"):
        with pytest.raises(untrusted.Refused):
            untrusted.read_file(tree, rel)
    with pytest.raises(untrusted.Refused):
        untrusted.open_dir(fd, "sub/dir/new", create=True)
    with pytest.raises(untrusted.Refused):
        untrusted.open_dir(fd, "top", create=True)
    assert sorted(p.name for p in outside(tree).iterdir()) == ["secret"]
    # the root itself must not be a link either
    with pytest.raises(untrusted.Refused):
        untrusted.open_root(tree / "top")


def test_a_fifo_never_blocks(tree: Path, fd: int) -> None:
    os.mkfifo(tree / "fifo")
    done = threading.Event()

    def attempt() -> None:
        for call in (
            lambda: untrusted.read(fd, "fifo"),
            lambda: untrusted.write(fd, "fifo", b"x", ME),
            lambda: untrusted.overwrite(fd, "fifo", b"x", ME),
            lambda: untrusted.ensure_file(fd, "fifo", b"", ME),
        ):
            with pytest.raises(untrusted.Refused, match="FIFO"):
                call()
        done.set()

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(5)
    assert done.is_set(), "a FIFO blocked"
    assert stat.S_ISFIFO((tree / "fifo").lstat().st_mode)


def test_a_fifo_opened_past_the_lstat_is_still_refused(tree: Path, fd: int) -> None:
    """The race: a FIFO swapped in after the lstat. O_NONBLOCK makes the open return, fstat
    refuses it."""
    os.mkfifo(tree / "fifo")
    start = time.monotonic()
    f = os.open("fifo", untrusted._READ, dir_fd=fd)
    try:
        with pytest.raises(untrusted.Refused, match="FIFO"):
            untrusted._check_regular(os.fstat(f), "fifo", None)
    finally:
        os.close(f)
    assert time.monotonic() - start < 1


def test_a_hard_link_is_refused(tree: Path, fd: int) -> None:
    os.link(tree / "ok.json", tree / "alias")
    with pytest.raises(untrusted.Refused, match="hard link"):
        untrusted.read(fd, "alias")
    with pytest.raises(untrusted.Refused, match="hard link"):
        untrusted.write(fd, "ok.json", b"x", ME)
    with pytest.raises(untrusted.Refused, match="hard link"):
        untrusted.overwrite(fd, "ok.json", b"x", ME)
    assert (tree / "alias").read_text() == "{}"


def test_an_oversized_file_is_refused(tree: Path, fd: int) -> None:
    (tree / "big").write_bytes(b"x" * 2000)
    with pytest.raises(untrusted.Refused, match="limit"):
        untrusted.read(fd, "big", limit=1000)
    assert untrusted.read(fd, "big", limit=2000) == b"x" * 2000


def test_a_socket_or_device_is_refused(tree: Path, fd: int) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tree / "sock"))
        calls: list[Callable[[], object]] = [
            lambda: untrusted.read(fd, "sock"),
            lambda: untrusted.overwrite(fd, "sock", b"x", ME),
            lambda: untrusted.write(fd, "sock", b"x", ME),
        ]
        for call in calls:
            with pytest.raises(untrusted.Refused, match="socket"):
                call()
    finally:
        sock.close()
    if os.geteuid() == 0:
        os.mknod(tree / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        with pytest.raises(untrusted.Refused, match="device"):
            untrusted.read(fd, "null")
        with pytest.raises(untrusted.Refused, match="device"):
            untrusted.overwrite(fd, "null", b"x", ME)
    with untrusted.directory(Path("/dev")) as dev, pytest.raises(untrusted.Refused):
        untrusted.read(dev, "null")


def test_a_directory_where_a_file_belongs_is_refused(tree: Path, fd: int) -> None:
    with pytest.raises(untrusted.Refused, match="directory"):
        untrusted.read(fd, "sub")
    with pytest.raises(untrusted.Refused, match="directory"):
        untrusted.write(fd, "sub", b"x", ME)
    with pytest.raises(untrusted.Refused, match="not a plain"):
        untrusted.read(fd, "../outside/secret")


def test_overwrite_keeps_the_inode_and_ensure_makes_what_is_missing(tree: Path, fd: int) -> None:
    ino = (tree / "ok.json").stat().st_ino
    untrusted.overwrite(fd, "ok.json", b"new", ME, 0o600)
    assert (tree / "ok.json").stat().st_ino == ino and (tree / "ok.json").read_bytes() == b"new"
    assert untrusted.ensure_file(fd, "made", b"{}", ME) is True
    assert untrusted.ensure_file(fd, "made", b"other", ME) is False
    assert (tree / "made").read_bytes() == b"{}"
    assert untrusted.ensure_dir(fd, "d", ME) is True and (tree / "d").is_dir()
    (tree / "dl").symlink_to(outside(tree))
    with pytest.raises(untrusted.Refused):
        untrusted.ensure_dir(fd, "dl", ME)
    aside = untrusted.move_aside(fd, "dl")
    assert (tree / aside).is_symlink() and not (tree / "dl").exists()


def test_writes_set_owner_and_mode_before_the_rename(tree: Path, fd: int) -> None:
    untrusted.write(fd, "x", b"data", ME, 0o640)
    st = (tree / "x").stat()
    assert (st.st_uid, st.st_gid) == ME and stat.S_IMODE(st.st_mode) == 0o640
