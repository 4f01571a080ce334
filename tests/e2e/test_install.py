"""End to end: the README's one set-up command, run by a fresh non-root user with sudo, in a
real terminal (tmux), reaches Claude Code with no new login; then `claudy uninstall`.

The user (made here, deleted afterwards; NOPASSWD sudo from a sudoers.d file removed
afterwards) is not in the engine's group: the test engine's socket is given a group of the
test's own, which install.sh finds on the socket and adds the user to. DOCKER_HOST names the
test engine; the images are the `built_images` fixture's (a copy of the checkout hashes the
same, so nothing is rebuilt) and Claude Code comes from the runner's cache (never npm).

The run's screen is saved (HAL_TEST_INSTALL_TRANSCRIPT names the file; else beside the test's
temporary files) for the issue's closing note.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common import claude_code, labels
from hal_common.config import Config
from hal_common.layout import ParentLayout
from hal_testing import claude
from hal_testing.pytest_plugin import missing, need_root
from host_shim.core.parent_spec import volume_names

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

CHECKOUT = Path(__file__).resolve().parents[2]
# Claude Code's own first screen (not "Claude Code", which claudy's progress says too)
CLAUDE_SCREEN = ("Welcome to Claude", "Choose the text style", "Let's get started", "Claude Code v")
SKIP = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
PARENT = Config().parent.name  # the user's config is the default one
PROFILE_LINE = 'export PATH="$HOME/.local/bin:$PATH"  # claudy (hal-9000)'


@dataclass
class User:
    name: str
    home: Path
    env: str  # `export …;` for the user's shell: the test engine, no registry, no npm
    installed: bool = False

    @property
    def venv(self) -> Path:
        return self.home / ".local/share/hal9000/venv"

    def run(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`script` in a fresh login shell of the user's (no terminal)."""
        return subprocess.run(
            ["su", "-l", self.name, "-c", f"{self.env} {script}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def _copy_checkout(dest: Path) -> None:
    shutil.copytree(
        CHECKOUT,
        dest,
        ignore=lambda _d, names: [n for n in names if n in SKIP or n.endswith(".egg-info")],
        symlinks=True,
    )


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    for d, dirs, files in os.walk(top):
        for n in [d, *(os.path.join(d, x) for x in dirs + files)]:
            os.lchown(n, uid, gid)


def _seed_claude_cache(home: Path, uid: int, gid: int) -> None:
    """The runner's cached Claude Code, linked into the user's cache (files stay root's,
    readable; directories the user's)."""
    version = claude_code.DEFAULT_VERSION
    src = claude.cache_home() / "hal9000" / "claude" / version
    if not src.is_dir():
        missing(f"Claude Code {version} is not in the host cache (claudy claude fetch {version})")
    dest = home / ".cache" / "hal9000" / "claude" / version
    dest.mkdir(parents=True)
    for f in src.iterdir():
        try:
            os.link(f, dest / f.name)
        except OSError:
            shutil.copy2(f, dest / f.name)
    for d in (home / ".cache", home / ".cache/hal9000", dest.parent, dest):
        os.chown(d, uid, gid)


def _leave(uid: int) -> None:
    """Wait for the user's processes (the terminal's were hung up) to end."""
    retry_until(
        lambda: subprocess.run(["pgrep", "-u", str(uid)], capture_output=True).returncode != 0,
        15,
        raises=False,
    )


def _remove_parent(dclient: docker.DockerClient) -> None:
    """The parent the test's user made, and its volumes (the user's config names it)."""
    for c in dclient.containers.list(all=True, filters={"name": f"^{PARENT}$"}):
        c.remove(force=True)
    for name in volume_names(PARENT).values():
        for v in dclient.volumes.list(filters={"name": f"^{name}$"}):
            v.remove(force=True)


@pytest.fixture(scope="module")
def user(
    docker_host: str, dclient: docker.DockerClient, built_images: dict[str, str]
) -> Iterator[User]:
    need_root("makes a user, a group and a sudoers file")
    for tool in ("sudo", "su", "useradd", "tmux"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (scripts/test installs sudo)")
    if not docker_host.startswith("unix://"):
        missing("the test engine is not a unix socket")
    sock = docker_host.removeprefix("unix://")
    tag = uuid.uuid4().hex[:6]
    name, group = f"hali{tag}", f"halsock{tag}"
    sudoers = Path(f"/etc/sudoers.d/hal9000-test-{tag}")
    st = os.stat(sock)
    # the socket's folders must let others through, as /var/run does (a private engine's run
    # folder is mktemp's 0700): opened for the test, closed again after
    closed = {d: d.stat().st_mode for d in Path(sock).parents if not d.stat().st_mode & 0o001}
    _remove_parent(dclient)  # a crashed run's (its user is gone: it would be reused)
    subprocess.run(["groupadd", group], check=True)
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    pw = pwd.getpwnam(name)
    home = Path(pw.pw_dir)
    try:
        sudoers.write_text(f"{name} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        for d, mode in closed.items():
            d.chmod((mode & 0o7777) | 0o001)
        os.chown(sock, -1, grp.getgrnam(group).gr_gid)
        os.chmod(sock, 0o660)
        _copy_checkout(home / "hal-9000")
        (home / "proj").mkdir()
        _chown_tree(home, pw.pw_uid, pw.pw_gid)
        _seed_claude_cache(home, pw.pw_uid, pw.pw_gid)
        env = {
            "DOCKER_HOST": docker_host,
            "HAL9000_OFFLINE": "1",
            "HAL9000_NPM_REGISTRY": claude.NO_REGISTRY,
        }
        exports = "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + ";"
        yield User(name, home, exports)
    finally:
        _remove_parent(dclient)  # whatever the uninstall tests did not get to
        _leave(pw.pw_uid)
        subprocess.run(["userdel", "-f", "-r", name], capture_output=True, check=False)
        subprocess.run(["groupdel", group], capture_output=True, check=False)
        sudoers.unlink(missing_ok=True)
        os.chown(sock, st.st_uid, st.st_gid)
        os.chmod(sock, st.st_mode & 0o7777)
        for d, mode in closed.items():
            d.chmod(mode & 0o7777)


def _screen(pane: libtmux.Pane, history: bool = False) -> str:
    """The pane's screen (with its history: all of it), wrapped lines joined."""
    args = ["capture-pane", "-p", "-J", *(["-S", "-"] if history else [])]
    return "\n".join(pane.cmd(*args).stdout)


def _transcript(text: str, tmp_path: Path) -> Path:
    path = Path(os.environ.get("HAL_TEST_INSTALL_TRANSCRIPT") or tmp_path / "install.txt")
    path.write_text(re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n")  # no screens of blanks
    return path


def test_where_python3_is_too_old_uv_makes_the_venv(user: User) -> None:
    """The branch for Ubuntu 22.04's 3.10, forced (every python3 here is new enough): uv from
    PyPI into its own venv, which finds a Python 3.11 (here the system's; elsewhere it would
    download one it manages)."""
    script = ". hal-9000/scripts/lib.sh; ROOT=~/hal-9000; python_venv ~/uv-venv ''"
    res = user.run(
        f"HAL9000_FORCE_UV=1 bash -euc {shlex.quote(script)} && ~/uv-venv/bin/claudy --version"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "installing uv (from PyPI)" in res.stderr and "claudy, version" in res.stdout
    cfg = (user.home / "uv-venv/pyvenv.cfg").read_text()
    assert "uv = " in cfg and "version_info = 3.11" in cfg
    shutil.rmtree(user.home / "uv-venv")


def test_a_fresh_user_with_sudo_gets_to_claude_code_with_one_command(
    user: User, server: libtmux.Server, dclient: docker.DockerClient, tmp_path: Path
) -> None:
    assert not any(user.name in g.gr_mem for g in grp.getgrall())  # in no group yet
    session = server.new_session("install", x=120, y=40, window_command=f"su -l {user.name}")
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: "$" in _screen(pane), 10, raises=False), _screen(pane)
    pane.send_keys(user.env)
    pane.send_keys("id && hal-9000/install.sh ~/proj")
    shown = retry_until(lambda: any(m in _screen(pane) for m in CLAUDE_SCREEN), 900, raises=False)
    claude_screen = _screen(pane)
    if shown:  # detach (the parent's tmux): the terminal is the shell's again, whose
        # screen holds the whole run (Claude's was tmux's alternate screen)
        parent = dclient.containers.get(PARENT)
        tmux = f"tmux -S {ParentLayout().tmux_sock}"
        clients = f"{tmux} list-clients -F '#{{client_name}}'"
        detach = f"for c in $({clients}); do {tmux} detach-client -t $c; done"
        parent.exec_run(["sh", "-c", detach])
        retry_until(lambda: _screen(pane).rstrip().endswith("$"), 30, raises=False)
    text = _screen(pane, history=True) + "\n\n[Claude Code's screen, before the detach]\n"
    path = _transcript(text + claude_screen, tmp_path)
    assert shown, f"no Claude Code screen (transcript: {path}):\n{text[-4000:]}"
    assert "Claude Code v" in claude_screen and "proj" in claude_screen
    assert "log out" not in text and "newgrp" not in text
    assert "going on with group halsock" in text
    user.installed = True
    parent = dclient.containers.get(PARENT)
    uid = pwd.getpwnam(user.name).pw_uid
    assert parent.attrs["Config"]["Env"].count(f"HAL_HOST_UID={uid}") == 1
    # the primary group is the user's own (a worker's files get it), not the engine's
    assert f"HAL_HOST_GID={pwd.getpwnam(user.name).pw_gid}" in parent.attrs["Config"]["Env"]
    manifest = (user.venv / "hal9000-install.txt").read_text()
    for kind in ("venv", "link", "profile", "group"):
        assert f"\n{kind}\t" in manifest, manifest
    assert PROFILE_LINE in (user.home / ".profile").read_text()


def _need_install(user: User) -> None:
    if not user.installed:
        pytest.skip("the install did not get through (the test above says why)")


def test_uninstall_lists_and_asks_and_without_a_terminal_refuses(
    user: User, server: libtmux.Server, dclient: docker.DockerClient
) -> None:
    _need_install(user)
    res = user.run("claudy uninstall")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no terminal" in res.stderr and "--yes" in res.stderr
    assert f"container  {PARENT}" in res.stdout
    assert f"venv       {user.venv}" in res.stdout
    # in a terminal it asks; N keeps everything
    session = server.new_session("ask", x=120, y=40, window_command=f"su -l {user.name}")
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: "$" in _screen(pane), 10, raises=False), _screen(pane)
    pane.send_keys(f"{user.env} claudy uninstall")
    assert retry_until(lambda: "Remove these? [y/N]" in _screen(pane), 60, raises=False), _screen(
        pane
    )
    pane.send_keys("n")
    assert retry_until(lambda: "nothing removed" in _screen(pane), 30, raises=False)
    assert dclient.containers.get(PARENT).status == "running"
    assert user.venv.is_dir()


def test_uninstall_yes_removes_the_install_and_keeps_images_and_volumes(
    user: User, dclient: docker.DockerClient, built_images: dict[str, str]
) -> None:
    _need_install(user)
    res = user.run("claudy uninstall --yes")
    if os.environ.get("HAL_TEST_INSTALL_TRANSCRIPT"):  # the closing note shows it too
        with open(os.environ["HAL_TEST_INSTALL_TRANSCRIPT"], "a") as f:
            f.write(f"\n[later, a new login]\n$ claudy uninstall --yes\n{res.stdout}{res.stderr}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"removed container {PARENT}" in res.stdout
    assert "kept: " in res.stdout and "--volumes" in res.stdout
    assert not dclient.containers.list(all=True, filters={"name": f"^{PARENT}$"})
    assert not (user.home / ".local/share/hal9000").exists()  # venv, uv's, then the empty dir
    assert not (user.home / ".local/bin/claudy").exists()
    assert PROFILE_LINE not in (user.home / ".profile").read_text()
    assert not (user.home / ".cache/hal9000").exists()
    for image in built_images.values():
        dclient.images.get(image)  # the images stay without --images
    for vol in volume_names(PARENT).values():
        dclient.volumes.get(vol)  # and the volumes without --volumes


def test_uninstall_volumes_removes_the_volumes_after_the_parent_is_gone(
    user: User, dclient: docker.DockerClient, docker_host: str, tmp_path: Path
) -> None:
    _need_install(user)
    # claudy is gone for the user: the checkout's, with the user's home and engine
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HAL9000_")},
        "HOME": str(user.home),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # never the runner's Claude cache
        "XDG_CONFIG_HOME": str(user.home / ".config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "DOCKER_HOST": docker_host,
    }
    run = [sys.executable, "-m", "host_shim", "uninstall", "--volumes", "--yes"]
    res = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    for vol in volume_names(PARENT).values():
        assert f"removed volume {vol}" in res.stdout
        assert not dclient.volumes.list(filters={"name": f"^{vol}$"})
    assert not dclient.containers.list(all=True, filters=labels.managed_filter(labels.ROLE_PARENT))
