"""`claudy DIR`'s quick entry on a real parent: it attaches when everything is in place, and
each way it must not, it falls back to the full path, which repairs and attaches.

Which path ran is read from `python -X importtime` (the full path imports click; the quick
one imports no third-party module at all); a new client in the parent's tmux server is the
attach. No timings are asserted (benchmark row 3 measures them).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common.errors import HalError
from hal_common.naming import container_name, session_name
from hal_testing.host import HostParent

pytestmark = pytest.mark.e2e

THIRD_PARTY = ("click", "rich", "docker", "requests", "tomlkit", "libtmux", "watchdog", "urllib3")


@pytest.fixture(scope="module")
def image(dclient: docker.DockerClient, built_images: dict[str, str]) -> Iterator[str]:
    """A worker image tag of this module's own, so that "rebuilding" it touches no other test."""
    tag = f"hal9000-quick-{uuid.uuid4().hex[:6]}/worker:test"
    dclient.images.get(built_images["worker"]).tag(tag)
    yield tag
    dclient.images.remove(tag)


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent], image: str) -> HostParent:
    return host_parents("quick", worker=f'memory = "1g"\nimage = "{image}"\n')


def _clients(env: HostParent) -> set[str]:
    try:
        code, out = env.tmux("list-clients", "-F", "#{client_name}")
    except HalError:  # the parent is not running (yet)
        return set()
    return set(out.split()) if code == 0 else set()


def _modules(path: Path) -> set[str]:
    """The modules `-X importtime` saw imported."""
    lines = path.read_text().splitlines() if path.exists() else []
    return {ln.rsplit("|", 1)[1].strip() for ln in lines if ln.startswith("import time:")}


def attach(env: HostParent, server: libtmux.Server, proj: Path, *options: str, **extra: str) -> str:
    """`claudy [OPTIONS] PROJ` in a terminal until a new client shows in the parent's tmux:
    "quick" or "full", the path it took. Then the terminal goes and the client is detached."""
    imp = env.base / f"importtime-{uuid.uuid4().hex[:6]}.txt"
    extra = {"PYTHONPROFILEIMPORTTIME": "1", **extra}  # -X importtime, through the launcher
    cmd = env.claudy_argv(*options, str(proj))
    cmd = cmd.replace("env ", "env " + "".join(f"{k}={v} " for k, v in extra.items()), 1)
    before = _clients(env)
    window = server.new_session(f"t{uuid.uuid4().hex[:6]}", x=120, y=40).new_window(
        window_shell=f"{cmd} 2>{imp}"
    )
    try:
        assert retry_until(lambda: bool(_clients(env) - before), 240, raises=False), (
            imp.read_text()[-3000:] if imp.exists() else "no output",
            env.logs(),
        )
    finally:
        window.kill()
        for name in _clients(env) - before:
            env.tmux("detach-client", "-t", name)
    modules = _modules(imp)
    assert "host_shim.commands.quick" in modules
    if "host_shim.commands.cli" in modules:
        return "full"
    assert not [m for m in modules if m.split(".")[0] in THIRD_PARTY], sorted(modules)
    return "quick"


def _settled(env: HostParent, proj: Path) -> None:
    """The worker's window is back (the parent's loop brings tmux and windows back)."""
    name = session_name(str(proj))
    assert retry_until(lambda: name in env.windows(), 60, raises=False), env.logs()


def test_the_quick_entry_attaches_and_each_change_falls_back(
    env: HostParent, server: libtmux.Server, dclient: docker.DockerClient, image: str
) -> None:
    proj = env.project("quick")
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"  # the full run of -d left the hint
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"

    # the window gone: the in-parent script says so, the full path makes it again
    env.tmux("kill-window", "-t", f"=hal:={session_name(str(proj))}")
    assert attach(env, server, proj) == "full"
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"

    # the worker stopped: its window goes with it; the full path starts it
    env.inner("stop", container_name(session_name(str(proj))))
    assert attach(env, server, proj) == "full"
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"

    # the config file changed (a comment): the hint's stamp no longer holds
    cfg = env.config_file
    cfg.write_text(cfg.read_text() + "# edited\n")
    assert attach(env, server, proj) == "full"
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"

    # an environment override: the hint is another environment's
    assert attach(env, server, proj, HAL9000_LOG_LEVEL="debug") == "full"
    _settled(env, proj)
    assert attach(env, server, proj, HAL9000_LOG_LEVEL="debug") == "quick"
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"  # the other environment's hint is its own

    # another directory: the full path decides (the policy), then it is quick too
    other = env.project("quick-other")
    assert attach(env, server, other) == "full"
    _settled(env, other)
    assert attach(env, server, other) == "quick"

    # the host's worker image rebuilt: the full path loads it into the parent
    rebuilt, _ = dclient.images.build(
        fileobj=io.BytesIO(f"FROM {image}\nLABEL rebuilt=1\n".encode()),
        tag=image,
        rm=True,
    )
    assert attach(env, server, proj) == "full"
    assert env.inner("image", "inspect", "-f", "{{.Id}}", image) == rebuilt.id
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"

    # the parent stopped: the full path starts it
    res = env.claudy("stop", "--yes")
    assert res.returncode == 0, res.stderr
    assert attach(env, server, proj) == "full"
    _settled(env, proj)
    assert attach(env, server, proj) == "quick"
