"""What each image is built from, and when it must be rebuilt."""

from __future__ import annotations

from pathlib import Path

from hal_common.config import parse_config
from host_shim.core.build_context import recipes


def test_recipes_follow_the_worker_image() -> None:
    cfg = parse_config('[worker]\nimage = "hal9000/worker:standard"\n')
    assert [(r.dockerfile, r.target) for r in recipes(cfg)] == [
        ("Dockerfile.worker", "standard"),
        ("Dockerfile.parent", None),
        ("Dockerfile.services", None),  # the built-in services run from it
    ]
    custom = parse_config('[worker]\nimage = "me/mine:1"\n')
    assert [r.dockerfile for r in recipes(custom)] == ["Dockerfile.parent", "Dockerfile.services"]
    off = "".join(
        f"[services.{n}]\nenabled = false\n" for n in ("chromadb", "chroma-mcp", "memory-bank")
    )
    assert [r.dockerfile for r in recipes(parse_config(off))][-1] == "Dockerfile.parent"


def test_source_hash_follows_what_each_image_is_built_from(tmp_path: Path) -> None:
    from host_shim.core.build_context import Recipe, source_hash

    for name in ("Dockerfile.worker", "Dockerfile.parent", "pyproject.toml", "README.md"):
        (tmp_path / name).write_text(name)
    for d in ("images", "hal_common", "hal_io", "parent_agent", "host_shim"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.py").write_text("x = 1\n")
    for f in ("hal-worker", "worker-tmux.conf", "hal-service"):
        (tmp_path / "images" / f).write_text(f)
    worker = Recipe("w", "Dockerfile.worker", "minimal")
    parent = Recipe("p", "Dockerfile.parent", None)
    w0, p0 = source_hash(tmp_path, worker), source_hash(tmp_path, parent)
    assert source_hash(tmp_path, Recipe("w", "Dockerfile.worker", "standard")) != w0
    (tmp_path / "parent_agent" / "a.py").write_text("x = 2\n")
    assert source_hash(tmp_path, parent) != p0 and source_hash(tmp_path, worker) == w0
    (tmp_path / "README.md").write_text("edited")  # docs alone never force a rebuild
    (tmp_path / "host_shim" / "__pycache__").mkdir()
    (tmp_path / "host_shim" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    p1 = source_hash(tmp_path, parent)
    (tmp_path / "images" / "hal-service").write_text("#!/bin/sh\n")  # the services image's
    assert source_hash(tmp_path, worker) == w0
    (tmp_path / "images" / "hal-worker").write_text("#!/bin/sh\n")
    assert source_hash(tmp_path, parent) == p1 and source_hash(tmp_path, worker) != w0


def test_standalone_stages_are_the_ones_from_the_base_that_copy_from_no_other() -> None:
    from host_shim.core.build_context import standalone_stages

    text = (
        "# a comment\nARG BASE_IMAGE=debian:bookworm-slim\nARG V=1\n"
        "FROM ${BASE_IMAGE} AS a\nARG V\nRUN echo $V\n"
        "FROM ${BASE_IMAGE} AS b\nRUN echo b\n"
        "FROM a AS c\nRUN echo c\n"
        "FROM ${BASE_IMAGE} AS d\nCOPY --from=b /x /x\n"
    )
    found = standalone_stages(text)
    assert list(found) == ["a", "b"]
    prologue = "# a comment\nARG BASE_IMAGE=debian:bookworm-slim\nARG V=1\n"
    assert found["a"] == prologue + "FROM ${BASE_IMAGE} AS a\nARG V\nRUN echo $V\n"
    assert found["b"] == prologue + "FROM ${BASE_IMAGE} AS b\nRUN echo b\n"
    assert standalone_stages("RUN true\n") == {}


def test_the_services_image_builds_three_stages_side_by_side() -> None:
    from pathlib import Path

    from host_shim.core.build_context import standalone_stages

    root = Path(__file__).parents[3]
    assert list(standalone_stages((root / "Dockerfile.services").read_text())) == [
        "py",
        "node",
        "runtime",
    ]
