"""The parent image's lock (host_shim/images/parent-requirements.lock, written by scripts/lock)
is up to date with pyproject's dependencies, and every pin carries its hashes (the image
installs it with `pip install --require-hashes`)."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hal_testing import REPO
from hal_testing.wheel import lock_pins
from host_shim.core.build_context import IMAGES, LOCK


def test_the_parent_lock_pins_every_dependency_within_its_bounds_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = lock_pins((REPO / IMAGES / LOCK).read_text())
    assert pins, "the lock holds no pins"
    stale = []
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        if name not in pins:
            stale.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            stale.append(f"{req.name}=={pins[name][0]} does not satisfy {spec}")
    assert not stale, "; ".join(stale) + ": run scripts/lock"
    for pinned, (version, hashes) in pins.items():
        assert hashes, f"{pinned}=={version} has no hash: run scripts/lock"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), pinned


def test_the_lock_reader_sees_a_stale_pin() -> None:
    text = "click==8.0.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via hal-9000\n"
    pins = lock_pins(text)
    assert pins == {"click": ("8.0.0", ["a" * 64])}
    assert not Requirement("click>=8.1").specifier.contains(pins["click"][0])
