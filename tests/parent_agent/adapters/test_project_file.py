"""The project file as the parent reads it, the trust records, a Dockerfile's build context."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from hal_common.config import parse_config
from hal_common.errors import ConfigError, UsageError
from hal_common.layout import ParentLayout
from hal_common.project_config import Untrusted, sha256
from hal_io.project_files import repo_root
from parent_agent.adapters import project_file


def test_the_root_is_the_repository_never_above_a_root(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    (root / "repo" / ".git").mkdir(parents=True)
    (root / "repo" / "sub" / "deep").mkdir(parents=True)
    (root / "plain").mkdir()
    (tmp_path / ".git").mkdir()  # above the root: never taken
    roots = (str(root),)
    assert repo_root(str(root / "repo" / "sub" / "deep"), roots) == str(root / "repo")
    assert repo_root(str(root / "plain"), roots) == str(root / "plain")


def test_a_link_or_a_big_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.toml").write_text("[worker]\n")
    os.symlink(tmp_path / "elsewhere.toml", tmp_path / ".hal9000.toml")
    with pytest.raises(ConfigError, match="not read: a symlink"):
        project_file.read(str(tmp_path))
    os.unlink(tmp_path / ".hal9000.toml")
    (tmp_path / ".hal9000.toml").write_text("#" * (65 << 10))
    with pytest.raises(ConfigError, match="not read"):
        project_file.read(str(tmp_path))
    os.unlink(tmp_path / ".hal9000.toml")
    assert project_file.read(str(tmp_path)) is None


def test_trust_is_per_repository_and_per_content(tmp_path: Path) -> None:
    layout = ParentLayout(data_dir=tmp_path / "data")
    repo = tmp_path / "repo"
    repo.mkdir()
    data = b'[worker]\nmemory = "64g"\n'
    (repo / ".hal9000.toml").write_bytes(data)
    user = parse_config("")
    with pytest.raises(Untrusted):
        project_file.load(user, str(repo), layout)
    project_file.trust(layout, str(repo), sha256(data))
    cfg, overlay = project_file.load(user, str(repo), layout)
    assert cfg.worker.memory == "64g" and overlay.trusted
    # a task worktree of the repository takes its trust; another repository does not
    task = f"{repo}/.hal9000/tasks/fix"
    assert project_file.trusted_hash(layout, task) == sha256(data)
    assert project_file.trusted_hash(layout, str(tmp_path / "other")) is None
    (repo / ".hal9000.toml").write_bytes(data + b"# changed\n")
    with pytest.raises(Untrusted, match="changed since you trusted it"):
        project_file.load(user, str(repo), layout)
    assert project_file.forget(layout, str(repo))
    assert project_file.trusted_hash(layout, str(repo)) is None


def test_a_build_context_is_its_folder_without_links_and_hashed(tmp_path: Path) -> None:
    d = tmp_path / "docker"
    (d / "files").mkdir(parents=True)
    (d / "Dockerfile").write_text("FROM hal9000/worker:minimal\nCOPY files /x\n")
    (d / "files" / "a.txt").write_text("a")
    (d / ".git").mkdir()
    (d / ".git" / "config").write_text("secret")
    os.symlink("/etc/passwd", d / "files" / "link")
    tar, digest = project_file.build_context(str(tmp_path), "docker/Dockerfile")
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        names = t.getnames()
    assert sorted(names) == ["Dockerfile", "files/a.txt"]
    assert project_file.build_context(str(tmp_path), "docker/Dockerfile")[1] == digest
    (d / "files" / "a.txt").write_text("b")
    assert project_file.build_context(str(tmp_path), "docker/Dockerfile")[1] != digest
    with pytest.raises(UsageError, match="no such file"):
        project_file.build_context(str(tmp_path), "docker/Missing")
