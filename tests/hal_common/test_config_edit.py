"""`config set` keeps every other byte: comments, order, mode, line ends, symlinks."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

import pytest

from hal_common.config_edit import atomic_write, parse_key, set_in_file
from hal_common.errors import ConfigError, UsageError
from hal_testing.config_text import SAMPLE


def _changed(before: str, after: str) -> list[str]:
    return [
        d for d in difflib.ndiff(before.splitlines(True), after.splitlines(True)) if d[0] in "+-"
    ]


@pytest.mark.parametrize(
    ("key", "raw", "old_line", "new_line"),
    [
        (
            "worker.memory",
            "2g",
            'memory   = "4g"     # claude is hungry',
            'memory   = "2g"     # claude is hungry',
        ),
        ("worker.cpus", "1.5", "cpus = 2", "cpus = 1.5"),
        (
            "keys.prefix",
            "C-b",
            'prefix = "C-a"   # screen habits',
            'prefix = "C-b"   # screen habits',
        ),
        ("services.web.port", "9090", "port = 8080", "port = 9090"),
        ("worker.env", '["A", "B"]', 'env = ["GH_TOKEN_FILE"]', 'env = ["A", "B"]'),
    ],
)
def test_set_changes_only_the_edited_line(
    cfg_file: Path, key: str, raw: str, old_line: str, new_line: str
) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text(SAMPLE)
    set_in_file(cfg_file, key, raw)
    after = cfg_file.read_text()
    assert _changed(SAMPLE, after) == [f"- {old_line}\n", f"+ {new_line}\n"]


def test_set_adds_a_missing_key_as_one_new_line_in_its_table(cfg_file: Path) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text(SAMPLE)
    set_in_file(cfg_file, "worker.pids", "100")
    after = cfg_file.read_text()
    assert _changed(SAMPLE, after) == ["+ pids = 100\n"]
    assert after.index("pids = 100") < after.index("[keys]")
    set_in_file(cfg_file, "log.level", "debug")
    assert cfg_file.read_text() == after + '\n[log]\nlevel = "debug"\n'


@pytest.mark.parametrize(
    ("key", "raw", "needle"),
    [
        ("worker.cpus", "two", 'refused worker.cpus = "two": [worker].cpus must be a number'),
        ("worker.memory", "lots", "is not a memory size"),
        ("parent.security", "yolo", "expected one of auto, caps"),
        ("worker.command", "[]", "must not be empty"),
        ("keys.stop", "N", "[keys].stop is 'N', which [keys].new_session also uses"),
        ("services.web.enabled", "maybe", "must be true or false"),
    ],
)
def test_a_bad_value_is_refused_and_the_file_is_untouched(
    cfg_file: Path, key: str, raw: str, needle: str
) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text(SAMPLE)
    before = os.stat(cfg_file)
    with pytest.raises(ConfigError) as e:
        set_in_file(cfg_file, key, raw)
    assert needle in e.value.message
    assert "config.toml:" not in e.value.message  # no positions in a text never written
    assert cfg_file.read_text() == SAMPLE
    assert os.stat(cfg_file).st_ino == before.st_ino
    assert os.listdir(cfg_file.parent) == ["config.toml"]  # no temp file left behind


def test_set_refuses_to_edit_a_file_that_is_already_broken(cfg_file: Path) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text("[worker]\npids = -1\n")
    with pytest.raises(ConfigError, match="already has problems") as e:
        set_in_file(cfg_file, "worker.memory", "1g")
    assert f"{cfg_file}:2:8: [worker].pids is -1; a worker always has" in e.value.message
    set_in_file(cfg_file, "worker.pids", "100")  # but fixing the problem itself is fine
    assert cfg_file.read_text() == "[worker]\npids = 100\n"
    cfg_file.write_text("[worker\n")
    with pytest.raises(ConfigError, match="does not parse"):
        set_in_file(cfg_file, "worker.pids", "2")


def test_set_creates_the_file_and_directory(cfg_file: Path) -> None:
    assert set_in_file(cfg_file, "worker.memory", "2g") == "2g"
    assert cfg_file.read_text() == '[worker]\nmemory = "2g"\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(cfg_file).st_mode) == 0o666 & ~umask


def test_set_keeps_mode_crlf_and_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "hal.toml"
    real.parent.mkdir()
    real.write_bytes(b'[worker]\r\nmemory = "4g"\r\n\r\n[log]\r\nlevel = "info"\r\n')
    real.chmod(0o600)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    set_in_file(link, "worker.cpus", "1")
    assert link.is_symlink()
    assert real.read_bytes() == (
        b'[worker]\r\nmemory = "4g"\r\ncpus = 1\r\n\r\n[log]\r\nlevel = "info"\r\n'
    )
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600


def test_atomic_write_replaces_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("old")
    inode = os.stat(path).st_ino
    atomic_write(path, "new")
    assert path.read_text() == "new" and os.stat(path).st_ino != inode
    assert os.listdir(tmp_path) == ["f"]


@pytest.mark.parametrize(
    ("key", "raw", "written"),
    [
        ("worker.cpus", "2", "[worker]\ncpus = 2\n"),
        ("worker.cpus", "1.5", "[worker]\ncpus = 1.5\n"),
        ("services.x.enabled", "true", "[services.x]\nenabled = true\n"),
        ("worker.env", '["a"]', '[worker]\nenv = ["a"]\n'),
        ("worker.memory", "2g", '[worker]\nmemory = "2g"\n'),
        ("parent.name", "123", '[parent]\nname = "123"\n'),  # a string key keeps the text
        ("keys.stop", '"Q"', '[keys]\nstop = "Q"\n'),
    ],
)
def test_values_are_typed_as_toml_else_strings(
    cfg_file: Path, key: str, raw: str, written: str
) -> None:
    set_in_file(cfg_file, key, raw)
    assert cfg_file.read_text() == written


def test_parse_key() -> None:
    assert parse_key("worker.memory") == ("worker", "memory")
    assert parse_key('services."my.svc".enabled') == ("services", "my.svc", "enabled")
    with pytest.raises(UsageError) as e:
        parse_key("worker.cpu")
    assert "did you mean worker.cpus" in e.value.hint
    for bad in ("worker", "nope.x", "services.web", "", "a = b"):
        with pytest.raises(UsageError):
            parse_key(bad)


def test_set_into_something_that_is_not_a_table_is_refused(cfg_file: Path) -> None:
    cfg_file.parent.mkdir()
    cfg_file.write_text("worker = 3\n")
    with pytest.raises(ConfigError, match=r"worker is not a table, so worker\.memory cannot"):
        set_in_file(cfg_file, "worker.memory", "1g")
    assert cfg_file.read_text() == "worker = 3\n"
