"""Real Claude Code for the tests, never downloaded by them: the host cache that the set-up
step fills (`claudy claude fetch`, run by scripts/test and .ci/run), and one shared store
made from it for in-process parents (`ParentLayout.claude_store_dir`).

A parent made through claudy installs from the same cache (`HostParent` points its
`XDG_CACHE_HOME` there, and its registry at a closed loopback port: a missing cache fails
at once, it never goes to npm)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from hal_common import claude_code
from host_shim.adapters.claude_fetch import cache_root

NO_REGISTRY = "http://127.0.0.1:9"  # discard: nothing answers, nothing is downloaded
SECOND_VERSION = "2.1.334"  # a newer real version for "outdated" (fetched by the set-up too)


def cache_home() -> Path:
    """The runner's XDG cache directory (where the set-up put the tarballs)."""
    home = Path(os.environ.get("HOME") or "~").expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")


def cached(version: str = claude_code.DEFAULT_VERSION) -> Path | None:
    """The cached binary of `version` (read out of its checked tarball), or None."""
    path = cache_root({"XDG_CACHE_HOME": str(cache_home())}) / version / claude_code.BINARY
    return path if path.is_file() else None


def shared_store() -> Path:
    """The tests' store: beside the cache, kept between runs (filled once per machine)."""
    return cache_home() / "hal9000" / "test-claude-store"


def seed_store(store: Path | None = None, version: str = claude_code.DEFAULT_VERSION) -> Path:
    """`store` (default the shared one) holding `version`, installed by the product's own
    code from the cache; RuntimeError when the cache lacks it (the set-up step was skipped)."""
    from parent_agent.adapters import claude_store

    store = store or shared_store()
    if claude_store.binary(store, version) is not None:
        return store
    binary = cached(version)
    if binary is None:
        raise RuntimeError(
            f"Claude Code {version} is not in the host cache ({cache_home()}/hal9000/claude): "
            f"run `claudy claude fetch {version}` (scripts/test does) before the tests"
        )

    claude_store.install(store, version, _chunks(binary))
    return store


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def mount(version: str = claude_code.DEFAULT_VERSION) -> tuple[str, str]:
    """`worker_spec(..., claude=)` for the shared store's `version` (seeded by the
    `built_images` fixture)."""
    return version, str(shared_store() / version / claude_code.BINARY)
