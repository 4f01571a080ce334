"""Attack: name a sensitive path as a project, in every way a project can be named.

One real parent for the module, whose only root is a directory that holds the host user's
home (with its secrets), hal-9000's config directory and the projects: the root check alone
would let them through, so only the path policy stands in the way. Each sensitive path
(and a link to one, a `..` walk into one, a root itself, a parent of one) is named through
`claudy DIR`, `claudy spawn|attach`, `hal-agent spawn|attach|stop` (as claudy's full path,
an old claudy and the dashboard's shell run it, and typed into that shell), the prefix-N
prompt and the recent-projects menu pressed through a real tmux client. Each must exit 2
(or say so on the screen) with the rule it broke; afterwards the inner engine has no new
container, tmux no new window, and the parent no new worker directory.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import container_name
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.host import IMAGE, HostParent, parent_config

pytestmark = pytest.mark.e2e

SECRETS = (".ssh", ".gnupg", ".aws", ".config", ".docker", ".kube", ".claude")
SENSITIVE = "is a sensitive directory"
CONTAINS = "contains a sensitive directory"
SYSTEM = "is a system directory"
ROOT = "is a root itself"

# (id, path relative to the module's base or absolute, the rule's words)
TARGETS: list[tuple[str, str, str]] = [
    *[(f"home-{s[1:]}", f"home/{s}", f"~/{s} holds") for s in SECRETS],
    ("config-dir", "config/hal9000", "hal-9000's config directory"),
    ("config-dir-parent", "config", CONTAINS),
    ("run-hal9000", "/run/hal9000", SYSTEM),
    ("etc", "/etc", SYSTEM),
    ("slash", "/", SYSTEM),
    ("link-to-ssh", "projects/keys", "~/.ssh holds"),
    ("dotdot-into-aws", "projects/legit/../../home/.aws", "~/.aws holds"),
    ("the-root", "", ROOT),
    ("home", "home", CONTAINS),
    ("link-to-home", "projects/up", CONTAINS),
]


def target_path(env: HostParent, rel: str) -> str:
    return rel if rel.startswith("/") else str(env.base / rel) if rel else str(env.base)


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    """The parent, its root the base that holds home/, config/ and projects/; one legit
    project's worker running; links to ~/.ssh and ~ among the projects."""
    env = host_parents("paths", home="home")
    root_only = parent_config(env.name, env.base, 'memory = "512m"\n', NO_BUILTIN_SERVICES)
    env.config_file.write_text(root_only)
    for s in SECRETS:
        (env.home / s).mkdir(exist_ok=True)
    (env.home / ".ssh" / "id_ed25519").write_text("canary: never in a worker\n")
    legit = env.project("legit")
    (env.root / "keys").symlink_to(env.home / ".ssh")
    (env.root / "up").symlink_to("../home")
    res = env.claudy("-d", str(legit))
    assert res.returncode == 0, res.stderr + res.stdout
    return env


def created(env: HostParent) -> tuple[list[str], set[str], str]:
    """What naming a project could create: worker containers (running or not), tmux
    windows, and the parent's per-worker directories."""
    ids = sorted(w["Id"] for w in env.inner_workers())
    dirs = env.sh(f"ls -A /data/workers {IMAGE.run_dir}/workers 2>/dev/null; true")
    return ids, env.windows(), dirs


def refused(code: int, out: str, needle: str, what: str) -> None:
    assert code == 2, f"{what}: exit {code}\n{out}"
    assert needle in " ".join(out.split()), f"{what}: no {needle!r} in\n{out}"


@pytest.mark.parametrize(("rel", "needle"), [t[1:] for t in TARGETS], ids=[t[0] for t in TARGETS])
def test_a_sensitive_path_is_refused_every_way_it_is_named(
    env: HostParent, rel: str, needle: str
) -> None:
    path = target_path(env, rel)
    before = created(env)
    # claudy DIR: its own pre-check
    res = env.claudy("-d", path, timeout=120)
    refused(res.returncode, res.stderr, needle, f"claudy -d {path}")
    # claudy spawn|attach DIR: passed on to the parent, which decides
    for verb in ("spawn", "attach"):
        res = env.claudy(verb, path, timeout=120)
        refused(res.returncode, res.stderr + res.stdout, needle, f"claudy {verb} {path}")
    # hal-agent in the parent: claudy's full path (attach --image-id), an old claudy's
    # spawn, a typed attach, a NAME that is a path
    for argv in (
        ["spawn", path, "--no-attach", "--image-id", "sha256:0"],
        ["attach", path, "--image-id", "sha256:0"],
        ["attach", path],
        ["spawn", path, "--no-window"],
        ["stop", path],
        ["logs", path],
    ):
        code, out = env.run(["hal-agent", *argv])
        refused(code, out, needle, f"hal-agent {' '.join(argv)}")
    assert created(env) == before


def test_the_host_users_tilde_is_the_host_users_home(env: HostParent) -> None:
    """`~` given to hal-agent (quoted, so no shell expanded it) is the host user's home."""
    before = created(env)
    for secret in SECRETS:
        code, out = env.run(["hal-agent", "spawn", f"~/{secret}", "--no-attach"])
        refused(code, out, f"~/{secret} holds", f"hal-agent spawn ~/{secret}")
    code, out = env.run(["hal-agent", "spawn", "~", "--no-attach"])
    refused(code, out, CONTAINS, "hal-agent spawn ~")
    assert created(env) == before


DASHBOARD_SHELL = "=hal:=dashboard.1"


def _dashboard_screen(env: HostParent) -> str:
    code, out = env.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", DASHBOARD_SHELL)
    return out if code == 0 else ""


def _mark_shown(env: HostParent, tag: str) -> Callable[[], bool]:
    """The command's exit code, tagged, is on the screen (not just the typed line)."""
    return lambda: re.search(rf"rc=\d+:{tag}", _dashboard_screen(env)) is not None


def test_hal_agent_typed_in_the_dashboard_is_refused(env: HostParent) -> None:
    before = created(env)
    cases = [
        ("spawn", "home/.ssh", "~/.ssh holds"),
        ("attach", "projects/keys", "~/.ssh holds"),
        ("spawn", "projects/legit/../../home/.claude", "~/.claude holds"),
        ("attach", "/run/hal9000", SYSTEM),
        ("spawn", "", ROOT),
        ("attach", "home", CONTAINS),
        ("spawn", "config/hal9000", "config directory"),
    ]
    for verb, rel, needle in cases:
        tag = uuid.uuid4().hex[:8]
        line = f"hal-agent {verb} {shlex.quote(target_path(env, rel))}; echo rc=$?:{tag}"
        env.tmux("send-keys", "-t", DASHBOARD_SHELL, "-l", line)
        env.tmux("send-keys", "-t", DASHBOARD_SHELL, "Enter")
        done = retry_until(_mark_shown(env, tag), 30, raises=False)
        screen = _dashboard_screen(env)
        assert done, screen
        assert f"rc=2:{tag}" in screen, screen
        assert needle in screen, (needle, screen)
    assert created(env) == before


ASK = """
import json, sys
from parent_agent.adapters.control import ask
from parent_agent.core.control import SpawnWorker
from hal_common.layout import ParentLayout
a = ask(ParentLayout().control_socket, SpawnWorker(sys.argv[1], window=False), 60)
print(json.dumps([a.ok, a.code, a.error, a.fallback]))
"""


def test_a_spawn_sent_straight_to_the_loop_is_refused_there(env: HostParent) -> None:
    """`hal-agent spawn /DIR` is the loop's to do (parent_agent/commands/quick.py): the
    policy holds in the loop itself, not in the command that asks it. Each request is
    written to the control socket directly, past every command's own checks."""
    before = created(env)
    for rel, needle in [
        ("home/.ssh", "~/.ssh holds"),
        ("projects/keys", "~/.ssh holds"),
        ("projects/legit/../../home/.aws", "~/.aws holds"),
        ("/run/hal9000", SYSTEM),
        ("", ROOT),
        ("home", CONTAINS),
    ]:
        code, out = env.run(["/opt/hal/bin/python", "-c", ASK, target_path(env, rel)])
        assert code == 0, out
        ok, exit_code, error, fallback = json.loads(out.strip().splitlines()[-1])
        assert (ok, exit_code, fallback) == (False, 2, False), (rel, out)
        assert needle in " ".join(error.split()), (rel, error)
    assert created(env) == before


# -- through a real tmux client: the prefix-N prompt and the recent-projects menu ---------------


@pytest.fixture
def client(env: HostParent, server: libtmux.Server) -> Iterator[libtmux.Pane]:
    """A terminal (a pane of the test's own tmux) with a tmux client of the parent's server
    in it, on a view of the `hal` session, as `claudy` gives a user."""
    view = f"pv{uuid.uuid4().hex[:6]}"
    attach = (
        f"docker -H {env.env['DOCKER_HOST']} exec -it -e TERM=xterm-256color {env.name} "
        f"tmux -S {IMAGE.tmux_sock} new-session -t =hal -s {view}"
    )
    session = server.new_session("paths", x=250, y=40, window_command=attach)
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: bool(env.tmux("list-clients")[1].strip()), 20)
    yield pane


def _screen(pane: libtmux.Pane) -> str:
    return "\n".join(pane.capture_pane())


def _press(pane: libtmux.Pane, key: str) -> None:
    pane.send_keys("C-b", enter=False, suppress_history=False)
    pane.send_keys(key, enter=False, suppress_history=False)


def _shown(pane: libtmux.Pane, *words: str) -> bool:
    screen = _screen(pane)
    return all(w in screen for w in words)


def test_the_prefix_n_prompt_refuses_a_typed_directory(
    env: HostParent, client: libtmux.Pane
) -> None:
    before = created(env)
    cases = [
        ("home/.ssh", SENSITIVE),
        ("projects/keys", SENSITIVE),
        ("projects/legit/../../home/.kube", SENSITIVE),
        ("/run/hal9000", SYSTEM),
        ("", ROOT),
        ("projects/up", CONTAINS),
        ("config/hal9000", SENSITIVE),
    ]
    for rel, needle in cases:
        _press(client, "N")
        assert retry_until(lambda: _shown(client, "another directory"), 10, raises=False), _screen(
            client
        )
        client.send_keys("o", enter=False)
        assert retry_until(lambda: _shown(client, "project directory"), 10, raises=False), _screen(
            client
        )
        client.send_keys(target_path(env, rel), enter=True)
        said = retry_until(lambda: _shown(client, "hal-agent:", needle), 20, raises=False)  # noqa: B023
        assert said, (rel, _screen(client))
        assert created(env) == before, rel


def _menu_key(pane: libtmux.Pane, project: Path) -> str:
    """The key of `project`'s entry in the recent-projects menu on the screen."""
    for line in pane.capture_pane():
        if re.search(re.escape(str(project)) + r"\s", line):
            found = re.search(r"\((\d)\)", line)
            if found:
                return found.group(1)
    raise AssertionError(f"{project} not in the menu:\n{_screen(pane)}")


def test_a_recent_project_that_now_breaks_the_policy_is_refused(
    env: HostParent, client: libtmux.Pane
) -> None:
    """A worker made for a project that then became a link into ~/.ssh: starting it again
    would bind-mount ~/.ssh. The menu lists it (it is recent), picking it is refused, and
    so is every other way of naming that worker or its path."""
    victim = env.project("victim")
    res = env.claudy("-d", str(victim))
    assert res.returncode == 0, res.stderr
    name = res.stdout.strip()
    assert env.run(["hal-agent", "stop", name])[0] == 0
    victim.rename(victim.with_name("victim.orig"))
    victim.symlink_to(env.home / ".ssh")

    def state() -> str:
        return env.inner("inspect", "-f", "{{.State.Status}}", container_name(name))

    assert state() == "exited"
    before = created(env)
    try:
        _press(client, "N")  # the menu (the dashboard behind it lists the victim too)
        assert retry_until(lambda: _shown(client, "another directory"), 10), _screen(client)
        client.send_keys(_menu_key(client, victim), enter=False)
        said = retry_until(lambda: _shown(client, "hal-agent:", SENSITIVE), 20, raises=False)
        assert said, _screen(client)
        for argv in (["attach", name], ["start", name], ["restart", name], ["attach", str(victim)]):
            code, out = env.run(["hal-agent", *argv])
            refused(code, out, "~/.ssh holds", f"hal-agent {' '.join(argv)}")
        for args in (("attach", name), ("start", name), ("-d", str(victim))):
            res = env.claudy(*args, timeout=120)
            refused(res.returncode, res.stderr + res.stdout, "~/.ssh holds", f"claudy {args}")
        assert state() == "exited"
        assert created(env) == before
        # the worker can still be cleaned up by name
        assert env.run(["hal-agent", "rm", name])[0] == 0
    finally:
        victim.unlink()
        victim.with_name("victim.orig").rename(victim)
