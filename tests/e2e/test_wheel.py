"""End to end, from a wheel: built from the working tree, installed into a fresh venv outside
the checkout, its `claudy build` and `claudy -d DIR` run against the test engine (the same
parent set-up as the other end-to-end tests, offline base and all)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from packaging.utils import canonicalize_name

from hal_common.config import Config
from hal_common.naming import session_name
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.host import HostParent
from hal_testing.wheel import build_wheel, install, lock_pins, outside, run
from host_shim.core.build_context import LOCK, SOURCE_LABEL, find_context, recipes, source_hash

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture(scope="module")
def wheel_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv, outside the checkout, with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    return install(build_wheel(base), base / "venv")


def test_claudy_from_a_wheel_builds_the_images_and_starts_a_worker(
    wheel_bin: Path,
    host_parents: Callable[..., HostParent],
    dclient: docker.DockerClient,
) -> None:
    hp = host_parents("wheel", extra=NO_BUILTIN_SERVICES)
    env, claudy = outside(hp.env), str(wheel_bin / "claudy")
    out = run([claudy, "build"], env, hp.base)
    assert "built hal9000/parent" in out and "built hal9000/worker:minimal" in out, out
    # the images it built are the ones this checkout would build: no rebuild on a later run
    here = find_context()
    for recipe in recipes(Config()):
        if recipe.dockerfile == "Dockerfile.services":
            continue  # the built-in services are off here
        label = dclient.images.get(recipe.tag).labels.get(SOURCE_LABEL)
        assert label == source_hash(here, recipe), recipe.tag
    proj = hp.project("alpha")
    out = run([claudy, "-d", str(proj)], env, hp.base)
    assert session_name(str(proj)) in out.splitlines(), out
    (worker,) = hp.inner_workers()
    assert worker["State"]["Running"], worker["State"]
    assert hp.in_worker(proj, "hal-worker", "pid").strip().isdigit()
    assert session_name(str(proj)) in hp.windows()
    # the parent's Python packages are the lock's, to the version, and hal-9000 itself
    script = "import importlib.metadata as m\nfor d in m.distributions(): print(d.name, d.version)"
    installed = dict(
        line.split() for line in hp.sh(f"/opt/hal/bin/python -c '{script}'").split("\n")
    )
    pins = {n: v for n, (v, _) in lock_pins((here.images / LOCK).read_text()).items()}
    assert {canonicalize_name(n): v for n, v in installed.items()} == {
        **pins,
        "hal-9000": here.project.version,
    }
