"""Claude Code outside the image (issue 13, target 6), end to end with the real binaries:
the first `claudy` installs the tested version into the parent's store from the host cache;
its worker runs it, read-only; `claudy claude update` installs a newer one without an image
rebuild; the dashboard and `ls --json` say which worker is outdated; a restart moves it;
a pin keeps new workers on the pinned one and `update` of another says so.

The host cache is filled by the set-up step (scripts/test: `claudy claude fetch 2.1.332` and
2.1.334); the parent's registry is a closed loopback port, so nothing is downloaded here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.naming import session_name
from hal_testing import claude
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.host import IMAGE, HostParent
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

OLD, NEW = "2.1.332", claude.SECOND_VERSION


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    return host_parents("cv", worker='memory = "1g"\n', extra=NO_BUILTIN_SERVICES)


def ls(env: HostParent) -> dict[str, Any]:
    rows = json.loads(env.sh("hal-agent ls --json --all"))
    validate("ls", rows)
    return {r["name"]: r["claude"] for r in rows}


def dashboard(env: HostParent) -> str:
    return env.sh(f"tmux -S {IMAGE.tmux_sock} capture-pane -p -t =hal:=dashboard.0")


def test_claude_code_is_installed_once_mounted_read_only_updated_and_pinned(
    env: HostParent,
) -> None:
    proj = env.project("alpha")
    name = session_name(str(proj))
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    assert f"Claude Code {OLD} is not in the parent yet" in res.stderr
    # the store: root's, read-only, one directory per version
    modes = env.sh(f"stat -c '%a %U %n' /data/claude/{OLD} /data/claude/{OLD}/claude")
    assert modes.splitlines() == [
        f"555 root /data/claude/{OLD}",
        f"555 root /data/claude/{OLD}/claude",
    ]
    # the worker runs it, cannot write it, and sees nothing else of the store
    assert env.in_worker(proj, "claude", "--version").startswith(f"{OLD} ")
    for attack in (
        "echo evil > /usr/local/bin/claude",
        "rm -f /usr/local/bin/claude",
        "chmod 777 /usr/local/bin/claude",
        f"ls /data/claude/{NEW}",
        "ls /data",
    ):
        out = env.inner("exec", f"hal9000-w-{name}", "sh", "-c", attack, check=False)
        assert env.in_worker(proj, "claude", "--version").startswith(f"{OLD} "), (attack, out)
    mounts = env.inner("inspect", f"hal9000-w-{name}", "--format", "{{json .Mounts}}")
    (bin_mount,) = [m for m in json.loads(mounts) if m["Destination"] == "/usr/local/bin/claude"]
    assert bin_mount["RW"] is False and bin_mount["Source"] == f"/data/claude/{OLD}/claude"
    assert ls(env)[name] == {"version": OLD, "outdated": False}
    # a rerun installs nothing
    again = env.claudy("-d", str(proj))
    assert again.returncode == 0 and "installing" not in again.stderr, again.stderr

    if claude.cached(NEW) is None:
        pytest.skip(f"the host cache has no Claude Code {NEW} (scripts/test fetches it)")
    res = env.claudy("claude", "update", NEW)
    assert res.returncode == 0, res.stderr + res.stdout
    assert f"Claude Code {NEW} installed" in res.stdout
    # the running worker keeps its own, and is outdated (ls --json, the dashboard)
    assert env.in_worker(proj, "claude", "--version").startswith(f"{OLD} ")
    assert ls(env)[name] == {"version": OLD, "outdated": True}
    assert retry_until(lambda: f"{OLD} outdated" in dashboard(env), 20, raises=False), dashboard(
        env
    )
    # a restart gets the newest installed
    env.sh(f"hal-agent restart {name}")
    assert ls(env)[name] == {"version": NEW, "outdated": False}
    assert env.in_worker(proj, "claude", "--version").startswith(f"{NEW} ")
    (w,) = env.inner_workers()
    assert w["Config"]["Labels"][labels.CLAUDE] == NEW
    # a pin: new workers get it; installing another says so; the NEW worker is now outdated
    with env.config_file.open("a") as f:
        f.write(f'\n[claude]\nversion = "{OLD}"\n')
    res = env.claudy("claude", "update", NEW)
    assert res.returncode == 0, res.stderr
    assert "already installed" in res.stdout and f"pins {OLD}" in res.stdout
    assert retry_until(
        lambda: ls(env)[name] == {"version": NEW, "outdated": True}, 20, raises=False
    )
    other = env.project("beta")
    assert env.claudy("-d", str(other)).returncode == 0
    assert env.in_worker(other, "claude", "--version").startswith(f"{OLD} ")
    listing = json.loads(env.claudy("claude", "ls", "--json").stdout)
    validate("claude-ls", listing)
    by_version = {r["version"]: r for r in listing["installed"]}
    assert by_version[OLD]["pinned"] and by_version[OLD]["workers"] == [session_name(str(other))]
    assert by_version[NEW]["workers"] == [name] and listing["target"] == OLD
