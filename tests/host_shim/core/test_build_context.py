"""What each image is built from, and when it must be rebuilt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import hal_common
from hal_common.config import parse_config
from host_shim.core.build_context import (
    FILES,
    IMAGES,
    PACKAGES,
    PARENT,
    Context,
    Project,
    Recipe,
    find_context,
    recipes,
    source_hash,
)


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


PROJECT = Project("0.1.0", ">=3.11", ("click>=8.1",), (("hal-agent", "parent_agent.x:main"),))


def fake_tree(root: Path) -> Context:
    """A tree laid out as a clone or site-packages: the packages, and their images folder."""
    images = root / IMAGES
    images.mkdir(parents=True)
    for dockerfile, names in FILES.items():
        for name in (dockerfile, *names):
            (images / name).write_text(name)
    for d in PACKAGES:
        (root / d).mkdir(exist_ok=True)
        (root / d / "a.py").write_text("x = 1\n")
    return Context(root, PROJECT)


def test_source_hash_follows_what_each_image_is_built_from(tmp_path: Path) -> None:
    ctx = fake_tree(tmp_path)
    images = ctx.images
    worker = Recipe("w", "Dockerfile.worker", "minimal")
    parent = Recipe("p", "Dockerfile.parent", None)
    w0, p0 = source_hash(ctx, worker), source_hash(ctx, parent)
    assert source_hash(ctx, Recipe("w", "Dockerfile.worker", "standard")) != w0
    (tmp_path / "parent_agent" / "a.py").write_text("x = 2\n")
    assert source_hash(ctx, parent) != p0 and source_hash(ctx, worker) == w0
    (tmp_path / "host_shim" / "__pycache__").mkdir()
    (tmp_path / "host_shim" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    p1 = source_hash(ctx, parent)
    (images / "hal-service").write_text("#!/bin/sh\n")  # the services image's
    assert source_hash(ctx, worker) == w0
    (images / "hal-worker").write_text("#!/bin/sh\n")  # not the parent's: it builds no image
    assert source_hash(ctx, parent) == p1 and source_hash(ctx, worker) != w0
    (images / "parent-requirements.lock").write_text("click==9\n")
    assert source_hash(ctx, parent) != p1
    p2 = source_hash(ctx, parent)
    newer = Context(tmp_path, replace(PROJECT, requires=("click>=9",)))  # what pip checks
    assert source_hash(newer, parent) != p2


def test_the_same_files_elsewhere_hash_the_same(tmp_path: Path) -> None:
    """A clone and a wheel install (site-packages) build the same images."""
    a, b = fake_tree(tmp_path / "clone"), fake_tree(tmp_path / "site-packages")
    for recipe in (Recipe("w", "Dockerfile.worker", "minimal"), Recipe("p", PARENT, None)):
        assert source_hash(a, recipe) == source_hash(b, recipe)


def test_the_parent_wheel_holds_the_packages_but_not_the_images(tmp_path: Path) -> None:
    ctx = fake_tree(tmp_path)
    assert sorted(ctx.package_files()) == [f"{p}/a.py" for p in PACKAGES]


def test_a_context_without_its_package_data_is_a_clear_error() -> None:
    """The installed claudy's own context: every build file there, or it says what is missing."""
    ctx = find_context()
    for dockerfile in FILES:
        assert all(f.is_file() for f in ctx.files(dockerfile).values())
    assert ctx.project.version == hal_common.__version__


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

    root = Path(__file__).parents[3] / IMAGES
    assert list(standalone_stages((root / "Dockerfile.services").read_text())) == [
        "py",
        "node",
        "runtime",
    ]
