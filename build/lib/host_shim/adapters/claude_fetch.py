"""Claude Code from npm onto this host: the platform package's tarball, its integrity
checked, kept in a cache (`$XDG_CACHE_HOME/hal9000/claude/VERSION/`), and the binary in it
read out as a stream for the parent (`hal-agent claude install`, over stdin).

The registry is npm's (`HAL9000_NPM_REGISTRY` names another, e.g. a mirror, or a test's
loopback stand-in). Standard library only (urllib): no npm, no node.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hal_common import claude_code
from hal_common.errors import HalError, UsageError

REGISTRY = "https://registry.npmjs.org"
MEMBER = "package/claude"  # the binary in the platform package's tarball
CHUNK = 1 << 20
TIMEOUT = 60.0
ELF = b"\x7fELF"

Progress = Callable[[int, int], None]  # (bytes so far, total or 0)


def cache_root(env: Mapping[str, str]) -> Path:
    """`$XDG_CACHE_HOME/hal9000/claude` (else `~/.cache/…`)."""
    home = Path(env.get("HOME") or "~").expanduser()
    return Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "hal9000" / "claude"


def registry(env: Mapping[str, str]) -> str:
    return (env.get("HAL9000_NPM_REGISTRY") or REGISTRY).rstrip("/")


@dataclass(frozen=True)
class Tarball:
    version: str
    path: Path  # the tarball, its integrity checked
    binary: Path  # `package/claude` read out of it once (the cache keeps both)


def _package(platform: str) -> str:
    return claude_code.PACKAGE.format(platform=platform)


def _get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:  # noqa: S310 - https registry
            doc = json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise UsageError(f"npm has no such Claude Code: {url}") from None
        raise HalError(f"npm answered {e.code} for {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise HalError(
            f"cannot reach npm ({url}): {e}",
            hint="offline? `claudy claude update --from FILE` installs a downloaded tarball "
            "or binary",
        ) from None
    if not isinstance(doc, dict):
        raise HalError(f"npm's answer for {url} is not an object")
    return doc


def latest(env: Mapping[str, str], platform: str) -> str:
    """The version npm's `latest` tag names."""
    name = urllib.parse.quote(_package(platform), safe="@")
    doc = _get_json(f"{registry(env)}/{name}/latest")
    return claude_code.check(str(doc.get("version", "")))


def _dist(env: Mapping[str, str], platform: str, version: str) -> tuple[str, str]:
    """(tarball URL, sha512 integrity) of one version."""
    name = urllib.parse.quote(_package(platform), safe="@")
    doc = _get_json(f"{registry(env)}/{name}/{version}")
    dist = doc.get("dist") or {}
    url, integrity = str(dist.get("tarball", "")), str(dist.get("integrity", ""))
    if not url.startswith(("https://", "http://")) or not integrity.startswith("sha512-"):
        raise HalError(f"npm's record of Claude Code {version} has no tarball with a sha512")
    return url, integrity


def _sri(h: Any) -> str:
    return "sha512-" + base64.b64encode(h.digest()).decode()


def _file_sri(path: Path) -> str:
    h = hashlib.sha512()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return _sri(h)


def fetch(
    env: Mapping[str, str], platform: str, version: str, progress: Progress | None = None
) -> Tarball:
    """The tarball of `version`, from the cache (its recorded integrity checked again) or
    downloaded into it (npm's integrity checked before it is kept)."""
    claude_code.check(version)
    vdir = cache_root(env) / version
    tgz, sri = vdir / f"{_package(platform).split('/')[-1]}-{version}.tgz", vdir / "integrity"
    if tgz.is_file() and sri.is_file():
        if _file_sri(tgz) == sri.read_text().strip():
            return _extracted(version, tgz)
        tgz.unlink()  # damaged: fetch it again
    url, integrity = _dist(env, platform, version)
    vdir.mkdir(parents=True, exist_ok=True)
    part = tgz.with_suffix(".part")
    h = hashlib.sha512()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r, part.open("wb") as out:  # noqa: S310
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            while chunk := r.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise HalError(f"downloading Claude Code {version} failed: {e}") from None
    if _sri(h) != integrity:
        part.unlink(missing_ok=True)
        raise HalError(
            f"the download of Claude Code {version} does not match npm's integrity "
            f"({integrity[:20]}…): refused",
            hint="try again; if it persists, a proxy or mirror alters the file",
        )
    sri.write_text(integrity + "\n")
    os.replace(part, tgz)
    return _extracted(version, tgz)


def _extracted(version: str, tgz: Path) -> Tarball:
    """The tarball with its binary beside it (read out once: gunzip takes seconds)."""
    out = tgz.parent / claude_code.BINARY
    if not out.is_file():
        part = out.with_suffix(".part")
        _size, chunks = binary_stream(tgz)
        with part.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
        part.chmod(0o755)
        os.replace(part, out)
    return Tarball(version, tgz, out)


def tar_version(path: Path) -> str | None:
    """The version in a platform tarball's package.json (None: not such a tarball)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            member = tar.extractfile("package/package.json")
            if member is None:
                return None
            doc = json.load(member)
    except (tarfile.TarError, KeyError, OSError, ValueError):
        return None
    version = str(doc.get("version", "")) if isinstance(doc, dict) else ""
    return version if claude_code.valid(version) else None


def binary_stream(path: Path) -> tuple[int, Iterator[bytes]]:
    """(size, chunks) of the binary: `package/claude` of a tarball, or `path` itself when it
    is an ELF binary."""
    with path.open("rb") as f:
        magic = f.read(4)
    if magic == ELF:
        return path.stat().st_size, _chunks(path.open("rb"))
    try:
        tar = tarfile.open(path, "r:gz")  # noqa: SIM115 - closed by the generator
        info = tar.getmember(MEMBER)
        member = tar.extractfile(info)
    except (tarfile.TarError, KeyError, OSError):
        member = None
    if member is None or not info.isfile():
        raise UsageError(
            f"{path} is neither a Claude Code binary nor npm's claude-code-linux-* tarball"
        )
    return info.size, _chunks(member, tar)


def _chunks(f: IO[bytes], owner: tarfile.TarFile | io.IOBase | None = None) -> Iterator[bytes]:
    try:
        while chunk := f.read(CHUNK):
            yield chunk
    finally:
        f.close()
        if owner is not None:
            owner.close()
