"""Fixtures for real engines: a private dockerd, the project's real images, real tmux.

A missing engine skips the tests that need it, saying why; with HAL_REQUIRE_ENGINES=1 (CI)
those skips become failures, so CI cannot go green without the real thing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from hal_common import labels

REQUIRE = os.environ.get("HAL_REQUIRE_ENGINES") == "1"
TEST_LABEL = "dev.hal9000.test"


def missing(reason: str) -> None:
    """Skip, or fail under CI, when a real engine is missing."""
    if REQUIRE:
        pytest.fail(f"required engine missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The engine the tests drive: HAL_TEST_DOCKER_HOST (scripts/test starts a private one)."""
    host = os.environ.get("HAL_TEST_DOCKER_HOST")
    if not host:
        missing("HAL_TEST_DOCKER_HOST is not set (scripts/test starts a private dockerd)")
    return str(host)


@pytest.fixture(scope="session")
def dclient(docker_host: str) -> docker.DockerClient:
    client = docker.DockerClient(base_url=docker_host, timeout=300)
    try:
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure means the engine is not usable
        missing(f"docker engine at {docker_host} does not answer: {e}")
    # Sweep what crashed runs left: everything labelled as ours by a test.
    for c in client.containers.list(all=True, filters={"label": TEST_LABEL}):
        c.remove(force=True)
    return client


@pytest.fixture(scope="session")
def built_images(dclient: docker.DockerClient) -> dict[str, str]:
    """The project's real images, built through claudy's own build path (offline base)."""
    from rich.console import Console

    from hal_common.config import Config
    from host_shim.adapters import images
    from host_shim.adapters.engine import HostEngine

    os.environ.setdefault("HAL9000_OFFLINE", "1")
    cfg = Config()
    # force: always (re)build, so the tests run this checkout's code (the layer cache keeps
    # it to seconds when only Python changed)
    images.ensure_images(HostEngine(dclient), cfg, Console(stderr=True), os.environ, force=True)
    return {
        "worker": str(dclient.images.get(cfg.worker.image).id),
        "parent": str(dclient.images.get(cfg.parent.image).id),
    }


@pytest.fixture
def labelled(dclient: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Labels for containers a test creates; they are removed by label afterwards."""
    mark = {TEST_LABEL: str(os.getpid()), labels.MANAGED: "true"}
    yield mark
    for c in dclient.containers.list(all=True, filters={"label": f"{TEST_LABEL}={os.getpid()}"}):
        c.remove(force=True)


@pytest.fixture(autouse=True)
def _short_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/sh")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("tmux") is None:
        for item in items:
            if "tmux" in item.keywords or "e2e" in item.keywords:
                item.add_marker(pytest.mark.usefixtures("_need_tmux"))


@pytest.fixture
def _need_tmux() -> None:
    missing("tmux is not installed")
