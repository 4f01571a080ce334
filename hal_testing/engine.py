"""The test engine: a docker-py client on an engine of the tests' own, the project's real
images built into it, and clean-up by label (never by name)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from hal_common import labels

TEST_LABEL = "dev.hal9000.test"  # on what a test creates itself; swept at session start
UID, GID = 1234, 1235  # the owner of test projects: neither root nor the user running the tests


class EngineMissing(RuntimeError):
    """The engine does not answer."""


def connect(host: str, deadline: float = 10.0) -> docker.DockerClient:
    """A client of the engine at `host`, once it answers `ping` (within `deadline` seconds)."""
    client = docker.DockerClient(base_url=host, timeout=300)
    end = time.monotonic() + deadline
    while True:
        try:
            client.ping()
            return client
        except Exception as e:
            if time.monotonic() > end:
                raise EngineMissing(f"docker engine at {host} does not answer: {e}") from e
        time.sleep(0.2)  # the engine is starting: ask again, until the deadline


def sweep(client: docker.DockerClient, value: str | None = None) -> None:
    """Remove the containers tests labelled (all of them, or one run's: `value`)."""
    label = TEST_LABEL if value is None else f"{TEST_LABEL}={value}"
    for c in client.containers.list(all=True, filters={"label": label}, ignore_removed=True):
        c.remove(force=True)


def remove_workers_under(client: docker.DockerClient, root: Path) -> None:
    """Remove the workers (running or not) of every project under `root`."""
    found = client.containers.list(
        all=True, filters=labels.managed_filter(labels.ROLE_WORKER), ignore_removed=True
    )
    for c in found:
        if str(c.labels.get(labels.PROJECT, "")).startswith(str(root)):
            c.remove(force=True)


def build_images(client: docker.DockerClient) -> dict[str, str]:
    """The project's real images, built through claudy's own build path (offline base).

    Always (re)built, so the tests run this checkout's code; the layer cache keeps it to
    seconds when only Python changed. Returns the image ids by role.
    """
    from rich.console import Console

    from hal_common.config import Config
    from host_shim.adapters import images
    from host_shim.adapters.engine import HostEngine

    os.environ.setdefault("HAL9000_OFFLINE", "1")
    cfg = Config()
    images.ensure_images(HostEngine(client), cfg, Console(stderr=True), os.environ, force=True)
    return {
        "worker": str(client.images.get(cfg.worker.image).id),
        "parent": str(client.images.get(cfg.parent.image).id),
    }


def chown_project(path: Path, uid: int = UID, gid: int = GID) -> Path:
    """Make `path` a project directory owned by the test user (when we may chown)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    return path


@dataclass
class Projects:
    """Project directories under `root` (whose workers the `projects` fixture removes)."""

    root: Path

    def make(self, name: str) -> Path:
        return chown_project(self.root / name)
