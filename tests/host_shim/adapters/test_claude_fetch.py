"""claudy's download path against a stand-in registry on 127.0.0.1 (real HTTP): the record,
the tarball, npm's sha512 integrity (a mismatch keeps nothing), the cache, the binary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hal_common.errors import HalError, UsageError
from hal_testing import claude
from hal_testing.npm_registry import Registry, sri, tarball
from host_shim.adapters import claude_fetch

PKG = "@anthropic-ai/claude-code-linux-x64"
SCRIPT = b'#!/bin/sh\necho "9.9.9 (Claude Code)"\n'


@pytest.fixture
def registry() -> Iterator[Registry]:
    with Registry() as r:
        yield r


def _env(tmp_path: Path, registry: Registry) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "cache"), "HAL9000_NPM_REGISTRY": registry.url}


def test_a_download_is_checked_kept_and_read_from_the_cache_after(
    tmp_path: Path, registry: Registry
) -> None:
    registry.add(PKG, "9.9.9", tarball("9.9.9", SCRIPT))
    env = _env(tmp_path, registry)
    seen: list[tuple[int, int]] = []
    got = claude_fetch.fetch(env, "linux-x64", "9.9.9", lambda d, t: seen.append((d, t)))
    assert got.binary.read_bytes() == SCRIPT
    assert got.path.parent == tmp_path / "cache" / "hal9000" / "claude" / "9.9.9"
    assert (got.path.parent / "integrity").read_text().startswith("sha512-")
    assert seen and seen[-1][0] == seen[-1][1] == got.path.stat().st_size
    assert claude_fetch.fetch(env, "linux-x64", "9.9.9").binary == got.binary
    assert registry.hits == 1  # the second came from the cache
    assert claude_fetch.latest(env, "linux-x64") == "9.9.9"
    size, chunks = claude_fetch.binary_stream(got.path)
    assert size == len(SCRIPT) and b"".join(chunks) == SCRIPT
    assert claude_fetch.tar_version(got.path) == "9.9.9"


def test_a_tarball_that_does_not_match_its_integrity_is_refused_and_not_kept(
    tmp_path: Path, registry: Registry
) -> None:
    registry.add(PKG, "9.9.9", tarball("9.9.9", SCRIPT), integrity=sri(b"something else"))
    with pytest.raises(HalError, match="does not match npm's integrity"):
        claude_fetch.fetch(_env(tmp_path, registry), "linux-x64", "9.9.9")
    left = list((tmp_path / "cache" / "hal9000" / "claude" / "9.9.9").iterdir())
    assert left == []


def test_a_cached_tarball_that_changed_is_fetched_again(tmp_path: Path, registry: Registry) -> None:
    registry.add(PKG, "9.9.9", tarball("9.9.9", SCRIPT))
    env = _env(tmp_path, registry)
    got = claude_fetch.fetch(env, "linux-x64", "9.9.9")
    got.path.write_bytes(b"damaged")
    assert claude_fetch.fetch(env, "linux-x64", "9.9.9").path.read_bytes() != b"damaged"
    assert registry.hits == 2


def test_a_version_npm_does_not_have_is_a_usage_error(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(UsageError, match="npm has no such Claude Code"):
        claude_fetch.fetch(_env(tmp_path, registry), "linux-x64", "9.9.8")


def test_the_real_tarball_goes_through_the_same_path(tmp_path: Path, registry: Registry) -> None:
    """The real 2.1.332 tarball from the host cache (the set-up fetched it), served over
    loopback: its integrity is npm's own, its binary the 402 MB one."""
    have = claude.cached()
    if have is None:
        pytest.skip("the host cache has no Claude Code (scripts/test fetches it)")
    tgz = next(have.parent.glob("*.tgz"))
    integrity = (have.parent / "integrity").read_text().strip()
    registry.add(PKG, "2.1.332", tgz, integrity=integrity)
    got = claude_fetch.fetch(_env(tmp_path, registry), "linux-x64", "2.1.332")
    assert got.binary.stat().st_size == have.stat().st_size


def test_a_file_that_is_neither_binary_nor_tarball_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tarball")
    with pytest.raises(UsageError, match="neither a Claude Code binary"):
        claude_fetch.binary_stream(junk)
    assert claude_fetch.tar_version(junk) is None


def test_the_cache_follows_xdg(tmp_path: Path) -> None:
    assert claude_fetch.cache_root({"HOME": "/h"}) == Path("/h/.cache/hal9000/claude")
    assert claude_fetch.cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/hal9000/claude")
