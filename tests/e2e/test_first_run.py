"""End to end, issue 13 target 7: the services image is built and loaded in the background.

`claudy DIR` does not wait for the services image: a detached process builds it (when the
host lacks it) and loads it into the parent, which starts the services on load; meanwhile
the services say "waiting", not an error. The background build's lock, log, record and its
failure report run for real here: real processes, the real engine, the real parent. (A
first run from an engine with no images is measured by scripts/bench-first-run.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from libtmux.test.retry import retry_until

from hal_common.services_build import BUILDING, DONE, FAILED, BuildRecord
from hal_testing.host import IMAGE, HostParent
from host_shim.adapters import background

pytestmark = pytest.mark.e2e
SERVICES_IMAGE = "hal9000/services:latest"


def paths_of(hp: HostParent) -> background.Paths:
    from hal_common.layout import HostLayout

    return background.Paths.of(HostLayout.from_env(hp.env), hp.env)


def child(hp: HostParent, **env: str) -> subprocess.CompletedProcess[str]:
    """The background build's process, run in the foreground (its log is its output)."""
    return subprocess.run(
        [sys.executable, "-m", background.CHILD],
        env={**hp.env, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture
def hp(host_parents: Callable[..., HostParent]) -> HostParent:
    return host_parents("first")


def test_the_parent_comes_up_without_the_services_image_and_they_start_on_load(
    hp: HostParent,
) -> None:
    proj = hp.project("one")
    res = hp.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    paths = paths_of(hp)
    assert "in the background" in res.stderr and str(paths.log) in res.stderr
    # the worker is there; the services wait for their image, never an error
    assert hp.in_worker(proj, "hal-worker", "pid").strip().isdigit()
    seen: set[str] = set()

    def up() -> bool:
        found: list[dict[str, Any]] = hp.services() or []
        seen.update(s["state"] for s in found if not s["ok"])
        return bool(found) and all(s["ok"] for s in found)

    assert retry_until(up, 300, raises=False), (hp.sh("hal-agent services"), paths.log.read_text())
    assert seen <= {"waiting", "starting"}, seen
    rec = background.read_record(paths)
    assert rec is not None and rec.state == DONE and rec.image == SERVICES_IMAGE
    assert "done: " in paths.log.read_text()
    assert not background.running(paths)
    # the MCP servers are registered for the worker
    assert retry_until(
        lambda: "chroma-mcp" in hp.in_worker(proj, "claude", "mcp", "list"), 60, raises=False
    )
    # the health probe and errors know no missing image
    assert "is missing" not in hp.sh("hal-agent health || true")
    # and a second claudy has nothing to build or load
    res = hp.claudy("-d", str(proj))
    assert res.returncode == 0 and "background" not in res.stderr, res.stderr


def test_while_the_image_is_missing_the_parent_says_waiting(hp: HostParent) -> None:
    """The parent without the services image (claudy down --volumes empties its engine):
    `hal-agent services` and the dashboard say waiting, with the host's record."""
    proj = hp.project("one")
    assert hp.claudy("-d", str(proj)).returncode == 0
    assert retry_until(lambda: background.read_record(paths_of(hp)) is not None, 30)
    retry_until(lambda: not background.running(paths_of(hp)), 300)
    hp.inner("rm", "-f", "hal9000-s-chromadb", "hal9000-s-chroma-mcp", "hal9000-s-memory-bank")
    hp.inner("rmi", SERVICES_IMAGE)
    building = BuildRecord(BUILDING, SERVICES_IMAGE, "/h/services-build.log", 1, time.time())
    background.write_record(paths_of(hp), building)
    out = hp.sh("hal-agent services || true")
    assert "… chromadb" in out and "waiting for image hal9000/services:latest" in out, out
    assert "building on the host since" in out

    def dash() -> str:
        return hp.sh(f"tmux -S {IMAGE.tmux_sock} capture-pane -p -t =hal:=dashboard.0")

    assert retry_until(lambda: "… chromadb waiting for image" in dash(), 20, raises=False), dash()
    failed = BuildRecord(FAILED, SERVICES_IMAGE, "/h/services-build.log", 0, 1.0, 2.0, "pip: 503")
    background.write_record(paths_of(hp), failed)
    out = hp.sh("hal-agent services || true")
    assert "✗ chromadb" in out and "failed: pip: 503 (log: /h/services-build.log)" in out, out


def test_the_lock_keeps_a_second_build_out(hp: HostParent) -> None:
    paths = paths_of(hp)
    with background.locked(paths) as held:
        assert held and background.running(paths)
        res = child(hp)
        assert res.returncode == 0 and "another background build runs" in res.stdout
        assert background.read_record(paths) is None  # it left before writing anything
    assert not background.running(paths)


def test_a_failure_is_recorded_and_reported_next_time(hp: HostParent) -> None:
    paths = paths_of(hp)
    res = child(hp, DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert res.returncode == 1, res.stdout
    rec = background.read_record(paths)
    assert rec is not None and rec.state == FAILED and "does not answer" in rec.error, rec
    # claudy status says so, and so does the next claudy (which builds it again)
    out = hp.claudy("status")
    assert "the background build of hal9000/services:latest failed" in out.stdout, out
    assert str(paths.log) in out.stdout
    res = hp.claudy("-d", str(hp.project("one")))
    assert res.returncode == 0, res.stderr
    assert "the background build of hal9000/services:latest failed" in res.stderr
    assert os.path.exists(paths.log)
    assert retry_until(
        lambda: (r := background.read_record(paths)) is not None and r.state == DONE, 300
    )


def test_a_build_started_detached_outlives_its_claudy(hp: HostParent) -> None:
    """Started by a claudy that ends at once (as one that execs into the terminal hand-over
    does): the build runs on, in a session of its own, and records how it went."""
    paths = paths_of(hp)
    env = {**hp.env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    starter = (
        "import os, sys; from host_shim.adapters import background as b; "
        "from hal_common.layout import HostLayout; "
        "b.start(b.Paths.of(HostLayout.from_env(os.environ), os.environ), os.environ)"
    )
    subprocess.run([sys.executable, "-c", starter], env=env, check=True, timeout=30)
    assert retry_until(
        lambda: (r := background.read_record(paths)) is not None and r.state == FAILED, 60
    )
    assert "failed: " in paths.log.read_text()
