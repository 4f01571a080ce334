"""Attacks on the Claude Code store (issue 13, target 6): a version name that is a path, a
symlink or a loose mode in the store, a second install racing the first, a binary that lies
about its version. The store must mount into a worker only what `hal-agent claude install`
put there, and never change a version once installed (a running worker's binary stays).

The binaries here are two-line scripts that answer `--version`: the store treats a binary as
opaque bytes and asks it only that (the real 402 MB binary goes through the same code in the
e2e test, tests/e2e/test_claude_versions.py, where a worker also tries to write it)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hal_common import claude_code
from hal_common.config import load_config
from hal_common.errors import ConfigError, HalError, UsageError
from host_shim.commands.cli import main as claudy
from parent_agent.adapters import claude_store
from parent_agent.commands.cli import main as hal_agent

BAD = ["../2.1.332", "2.1.332/..", "..", ".", "/etc", "2.1.332/x", "2.1", "2.1.332\n", "",
       "2.1.332 ", "-2.1.332", "2.1.332-../x", "a.b.c"]  # fmt: skip


def script(version: str) -> bytes:
    return f'#!/bin/sh\necho "{version} (Claude Code)"\n'.encode()


def chunks(data: bytes) -> Iterator[bytes]:
    yield data


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.mark.parametrize("bad", BAD)
def test_a_version_that_is_not_a_version_is_refused_everywhere(
    bad: str, store: Path, tmp_path: Path
) -> None:
    with pytest.raises(UsageError):
        claude_store.install(store, bad, chunks(script("2.1.332")))
    with pytest.raises(UsageError):
        claude_store.binary(store, bad)
    assert not store.exists() or os.listdir(store) == []
    # from the config: refused like any bad value ("" means no pin)
    if bad:
        cfg_file = tmp_path / "config.toml"
        cfg_file.write_text(f"[claude]\nversion = {json.dumps(bad)}\n")
        with pytest.raises(
            ConfigError, match=r"\[claude\].version is .* not a Claude Code version"
        ):
            load_config(cfg_file, {})


@pytest.mark.parametrize("bad", ["../x", "1.2.3/../../etc", "..", "1.2"])
def test_argv_versions_are_refused_before_anything_runs(bad: str, tmp_path: Path) -> None:
    env = {"HAL_DATA_DIR": str(tmp_path / "data"), "HAL9000_CONFIG": str(tmp_path / "c.toml")}
    res = CliRunner().invoke(hal_agent, ["claude", "install", bad], env=env, input=b"x")
    assert res.exit_code == 2 and "not a Claude Code version" in res.output
    assert not (tmp_path / "data").exists()
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HAL9000_NPM_REGISTRY": "http://127.0.0.1:9"}
    res = CliRunner().invoke(claudy, ["claude", "update", bad], env=env)
    assert res.exit_code == 2 and "not a Claude Code version" in res.output


def test_an_install_is_read_only_root_s_and_whole(store: Path) -> None:
    found, new = claude_store.install(store, "2.1.332", chunks(script("2.1.332")))
    assert new and found.path == store / "2.1.332" / "claude"
    assert oct(os.stat(found.path).st_mode & 0o7777) == "0o555"
    assert oct(os.stat(found.path.parent).st_mode & 0o7777) == "0o555"
    assert os.listdir(store) == ["2.1.332"]  # no temporary directory left
    assert [i.version for i in claude_store.installed(store)] == ["2.1.332"]


def test_an_installed_version_is_never_replaced(store: Path) -> None:
    first, _ = claude_store.install(store, "2.1.332", chunks(script("2.1.332")))
    inode = os.stat(first.path).st_ino
    again, new = claude_store.install(store, "2.1.332", chunks(script("2.1.332") + b"# evil\n"))
    assert not new and os.stat(again.path).st_ino == inode
    assert first.path.read_bytes() == script("2.1.332")


def test_a_binary_that_names_another_version_is_refused_and_leaves_nothing(store: Path) -> None:
    with pytest.raises(UsageError, match=r"says it is Claude Code 2\.1\.334"):
        claude_store.install(store, "2.1.332", chunks(script("2.1.334")))
    assert os.listdir(store) == []
    with pytest.raises(HalError, match="failed"):
        claude_store.install(store, "2.1.332", chunks(b"#!/bin/sh\nexit 3\n"))
    with pytest.raises(UsageError, match="nothing arrived"):
        claude_store.install(store, "2.1.332", iter(()))
    assert os.listdir(store) == []


def test_a_symlinked_version_directory_is_never_mounted(store: Path, tmp_path: Path) -> None:
    """Someone made STORE/2.1.999 a symlink to a directory holding a `claude` of their own:
    the store does not list it, a pin on it is refused, an install does not follow it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "claude").write_bytes(script("2.1.999"))
    (elsewhere / "claude").chmod(0o555)
    elsewhere.chmod(0o555)
    store.mkdir()
    (store / "2.1.999").symlink_to(elsewhere)
    assert claude_store.binary(store, "2.1.999") is None
    assert claude_store.installed(store) == []
    assert claude_store.strays(store) == ["2.1.999"]
    with pytest.raises(HalError, match="not installed"):
        claude_store.resolve(store, "2.1.999")
    with pytest.raises(HalError, match="exists but is not an installed version"):
        claude_store.install(store, "2.1.999", chunks(script("2.1.999")))
    assert (elsewhere / "claude").read_bytes() == script("2.1.999")  # untouched


def test_a_symlinked_binary_or_a_loose_mode_is_never_mounted(store: Path, tmp_path: Path) -> None:
    claude_store.install(store, "2.1.332", chunks(script("2.1.332")))
    # a binary that is a symlink (to something a worker could write, say)
    (tmp_path / "w").write_bytes(script("2.1.333"))
    v = store / "2.1.333"
    v.mkdir()
    (v / "claude").symlink_to(tmp_path / "w")
    v.chmod(0o555)
    # a version directory others may write (its binary could be swapped under a worker)
    loose = store / "2.1.334"
    loose.mkdir()
    (loose / "claude").write_bytes(script("2.1.334"))
    (loose / "claude").chmod(0o555)
    loose.chmod(0o777)
    assert [i.version for i in claude_store.installed(store)] == ["2.1.332"]
    assert claude_store.resolve(store, "").version == "2.1.332"  # newest *valid* installed
    assert set(claude_store.strays(store)) == {"2.1.333", "2.1.334"}


def test_two_installs_racing_leave_one_whole_version(store: Path) -> None:
    results: list[object] = []

    def one(tag: bytes) -> None:
        try:
            results.append(claude_store.install(store, "2.1.332", chunks(script("2.1.332") + tag)))
        except HalError as e:
            results.append(e)

    threads = [threading.Thread(target=one, args=(f"# {i}\n".encode(),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert os.listdir(store) == ["2.1.332"]  # no half-written version, no temporary left
    body = (store / "2.1.332" / "claude").read_bytes()
    assert body.startswith(script("2.1.332")) and len(body) == len(script("2.1.332")) + 4
    assert claude_store.binary(store, "2.1.332") is not None
    assert all(not isinstance(r, HalError) for r in results)  # the losers: already installed
    assert sum(1 for r in results if isinstance(r, tuple) and r[1]) == 1


def test_the_target_is_the_pin_else_the_newest(store: Path) -> None:
    for v in ("2.1.332", "2.1.40", "2.1.334"):
        claude_store.install(store, v, chunks(script(v)))
    assert claude_store.resolve(store, "").version == "2.1.334"
    assert claude_store.resolve(store, "2.1.40").version == "2.1.40"
    assert claude_code.outdated("2.1.332", "", ["2.1.332", "2.1.334"])
    assert not claude_code.outdated("2.1.332", "2.1.332", ["2.1.332", "2.1.334"])
    assert claude_code.wanted("", []) == claude_code.DEFAULT_VERSION
