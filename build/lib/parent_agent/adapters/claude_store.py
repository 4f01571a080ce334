"""The parent's Claude Code store: `STORE/VERSION/claude`, one directory per version.

Written only here, by `hal-agent claude install` (root, in the parent): a version arrives on
stdin, goes to a private temporary directory in the store, is checked (`claude --version`
must name that version), made read-only (file and directory 0555, root's) and renamed into
place in one step. An installed version is never replaced or changed: a running worker's
binary stays the same file. Workers mount one version's binary read-only; none can write
the store (it is never mounted writable into a worker, and lies outside everything that is).

Reading is strict too: a version's directory counts only when its name is a valid version,
it is a real directory (not a symlink), and its `claude` a regular file (not a symlink), all
root's and not writable by anyone else. Anything else in the store is ignored (and `ls`
names it), so a path the store does not vouch for is never mounted into a worker.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hal_common import claude_code
from hal_common.errors import HalError, UsageError

MAX_BINARY = 2 << 30  # 2 GiB: a stream longer than this is refused (today's is 402 MB)
VERSION_TIMEOUT = 60.0


@dataclass(frozen=True)
class Installed:
    version: str
    path: Path
    size: int


def _owned_ro(st: os.stat_result) -> bool:
    """Root's (or the store owner's, in tests), and nobody else may write it."""
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def binary(store: Path, version: str) -> Installed | None:
    """The installed `version`, checked as the module says; None when it is not there (or
    not as the store makes it)."""
    claude_code.check(version)
    vdir = store / version
    try:
        dst = os.lstat(vdir)
        fst = os.lstat(vdir / claude_code.BINARY)
    except OSError:
        return None
    if not (stat.S_ISDIR(dst.st_mode) and _owned_ro(dst) and not dst.st_mode & 0o200):
        return None
    if not (stat.S_ISREG(fst.st_mode) and _owned_ro(fst) and fst.st_mode & 0o111):
        return None
    return Installed(version, vdir / claude_code.BINARY, fst.st_size)


def installed(store: Path) -> list[Installed]:
    """Every valid installed version, oldest first."""
    try:
        names = os.listdir(store)
    except FileNotFoundError:
        return []
    found = [binary(store, n) for n in names if claude_code.valid(n)]
    return sorted((f for f in found if f is not None), key=lambda f: claude_code.key(f.version))


def strays(store: Path) -> list[str]:
    """Names in the store that are not installed versions (left-overs, or not ours)."""
    try:
        names = sorted(os.listdir(store))
    except FileNotFoundError:
        return []
    good = {i.version for i in installed(store)}
    return [n for n in names if n not in good]


def resolve(store: Path, pin: str) -> Installed:
    """The version a new spawn or restart gets (the pin, else the newest installed)."""
    have = installed(store)
    goal = claude_code.target(pin, [i.version for i in have])
    if goal is None:
        raise HalError(
            "no Claude Code is installed in this parent",
            hint="run `claudy` (it installs the tested version) or `claudy claude update`",
        )
    found = next((i for i in have if i.version == goal), None)
    if found is None:
        raise HalError(
            f"Claude Code {goal} ([claude] version) is not installed in this parent",
            hint=f"`claudy claude update {goal}` installs it; `hal-agent claude ls` shows "
            "what is installed",
        )
    return found


def run_version(path: Path) -> str:
    """The version `path --version` prints (offline), or a HalError."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(path.parent), "DISABLE_AUTOUPDATER": "1"}
    for attempt in range(5):
        try:
            out = subprocess.run(
                [str(path), "--version"],
                capture_output=True,
                text=True,
                timeout=VERSION_TIMEOUT,
                check=False,
                env=env,
            )
            break
        except OSError as e:
            # ETXTBSY: a concurrent fork (another install's) still held the file open
            if e.errno == errno.ETXTBSY and attempt < 4:
                time.sleep(0.1 * (attempt + 1))
                continue
            raise HalError(f"the new Claude Code does not run: {e}") from None
        except subprocess.TimeoutExpired as e:
            raise HalError(f"the new Claude Code does not run: {e}") from None
    found = claude_code.version_line(out.stdout)
    if out.returncode != 0 or found is None:
        text = (out.stdout + out.stderr).strip()[:300]
        raise HalError(f"`claude --version` failed ({out.returncode}): {text}")
    return found


def install(store: Path, version: str, chunks: Iterable[bytes]) -> tuple[Installed, bool]:
    """Install `version` from `chunks` (the binary itself); (it, False) when it was already
    installed (`chunks` is then read to its end and dropped: the stored one stays)."""
    claude_code.check(version)
    store.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(store, 0o755)  # noqa: S103 - readable by all (workers read through mounts)
    have = binary(store, version)
    if have is not None:
        for _ in chunks:
            pass
        return have, False
    if os.path.lexists(store / version):
        raise HalError(
            f"{store / version} exists but is not an installed version",
            hint=f"remove it in the parent (`rm -rf {store / version}`), then install again",
        )
    tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=store))
    try:
        path = tmp / claude_code.BINARY
        _write(path, chunks)
        os.chmod(path, 0o555)  # noqa: S103 - read and run by every worker, written by none
        got = run_version(path)
        if got != version:
            raise UsageError(
                f"the binary says it is Claude Code {got}, not {version}",
                hint=f"install it as {got}",
            )
        os.chmod(tmp, 0o555)  # noqa: S103 - read by every worker, written by none
        try:
            os.rename(tmp, store / version)  # atomic; refused when the name exists
        except OSError:
            won = binary(store, version)
            if won is None:
                raise
            return won, False  # another install of it won the race: that one stays
    except OSError as e:
        raise HalError(f"cannot install Claude Code {version}: {e}") from None
    finally:
        if tmp.exists():
            os.chmod(tmp, 0o700)
            shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(store)
    done = binary(store, version)
    if done is None:
        raise HalError(f"Claude Code {version} did not land in {store}")
    return done, True


def _write(path: Path, chunks: Iterable[bytes]) -> int:
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_BINARY:
                raise UsageError(f"more than {MAX_BINARY >> 20} MiB on stdin: not a binary")
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    if size == 0:
        raise UsageError("nothing arrived on stdin", hint="claudy claude update streams it")
    return size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(store: Path, version: str) -> bool:
    """Remove an installed version (the caller checks no worker mounts it)."""
    claude_code.check(version)
    vdir = store / version
    if binary(store, version) is None:
        return False
    os.chmod(vdir, 0o700)
    shutil.rmtree(vdir)
    return True
