"""Attacks on Claude's state, from inside real workers running the real Claude Code image
(issue 11, points 1 and 2). Each must fail for the attacker:

- write the shared config (settings, CLAUDE.md, agents, commands, skills, plugins, the
  managed settings);
- plant a hook or a stdio MCP server that would run in another worker;
- read another worker's transcripts;
- plant a symlink, a FIFO or a hard link for the parent in its own state or the credentials
  file, then have the parent spawn, import a credential, apply a service change and sync:
  the parent follows nothing, reads nothing outside, and never hangs.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import session_name
from hal_testing.claude_files import future_ms, oauth_doc
from hal_testing.config_text import NO_BUILTIN_SERVICES
from hal_testing.engine import GID, UID
from hal_testing.host import IMAGE, HostParent

pytestmark = pytest.mark.e2e

W = "/home/hal/.claude"
MARK = f"hal-attack-{uuid.uuid4().hex[:12]}"
TOKEN = f"sk-ant-oat01-ATTACK{uuid.uuid4().hex}"
# a service toggled to make the parent re-register MCP servers in every worker
PROBE_SERVICE = (
    '\n[services.probe]\nenabled = false\nimage = "hal9000/worker:standard"\n'
    'command = ["sleep", "600"]\nport = 8899\nmcp = true\n'
)
QUICK = 60.0  # a trigger the parent must finish within (claudy's own round trips included)


def host_claude(home: Path) -> None:
    d = home / ".claude"
    for sub in ("agents", "commands", "skills/s", "plugins"):
        (d / sub).mkdir(parents=True)
    (d / ".credentials.json").write_text(oauth_doc(TOKEN, future_ms(6)))
    (d / ".credentials.json").chmod(0o600)
    (d / "settings.json").write_text('{"model": "opus"}\n')
    (d / "CLAUDE.md").write_text("# house rules\n")
    (d / "agents" / "a.md").write_text("agent\n")
    (d / "commands" / "c.md").write_text("command\n")
    (d / "skills" / "s" / "SKILL.md").write_text("skill\n")
    (home / ".claude.json").write_text(json.dumps({"theme": "dark"}))
    for p in [home, *home.rglob("*")]:
        os.chown(p, UID, GID, follow_symlinks=False)


@pytest.fixture(scope="module")
def hp(host_parents: Callable[..., HostParent]) -> HostParent:
    s = host_parents(
        "at",
        worker='image = "hal9000/worker:standard"\nmemory = "1g"\n',
        extra=NO_BUILTIN_SERVICES + PROBE_SERVICE,
        home="home",
        env={"SUDO_UID": str(UID), "SUDO_GID": str(GID)},
    )
    host_claude(s.home)
    for name in ("a", "b"):
        res = s.claudy("-d", str(s.project(name)))
        assert res.returncode == 0, res.stderr + res.stdout
    return s


def sh_in(hp: HostParent, name: str, script: str) -> str:
    """`sh -c SCRIPT` in worker `name` (exit code not checked: attacks are meant to fail)."""
    return hp.in_worker(hp.root / name, "sh", "-c", script + "\ntrue")


def state_dir(hp: HostParent, name: str) -> str:
    return str(IMAGE.worker_state(session_name(str(hp.root / name))))


def timed(what: Callable[[], object]) -> float:
    t0 = time.monotonic()
    what()
    return time.monotonic() - t0


def test_the_shared_config_is_read_only_in_a_worker(hp: HostParent) -> None:
    script = " ; ".join(
        [
            f"echo '{{\"hooks\": 1}}' > {W}/settings.json 2>&1 && echo WROTE settings",
            f"echo planted >> {W}/CLAUDE.md 2>&1 && echo WROTE claude.md",
            f"rm -f {W}/settings.json 2>&1 && echo REMOVED settings",
            f"mv {W}/CLAUDE.md {W}/x 2>&1 && echo MOVED claude.md",
            *(
                f"touch {W}/{d}/x 2>&1 && echo WROTE {d}"
                for d in ("agents", "commands", "skills", "plugins")
            ),
            f"echo x > {W}/agents/a.md 2>&1 && echo WROTE agent",
            f"rm -rf {W}/skills/s 2>&1; test -e {W}/skills/s || echo REMOVED skill",
            "echo '{}' > /etc/claude-code/managed-settings.json 2>&1 && echo WROTE managed",
            f"ln -sfn /tmp {W}/agents 2>&1 && echo LINKED agents",
        ]
    )
    out = sh_in(hp, "a", script)
    assert "WROTE" not in out and "REMOVED" not in out and "MOVED" not in out, out
    assert "LINKED" not in out, out
    assert "Read-only file system" in out, out
    assert sh_in(hp, "b", f"cat {W}/CLAUDE.md") == "# house rules"
    assert hp.sh(f"cat {IMAGE.claude_home}/settings.json") == '{"model": "opus"}'


def test_a_hook_or_stdio_mcp_server_planted_in_one_worker_never_reaches_another(
    hp: HostParent,
) -> None:
    settings = sh_in(hp, "b", f"cat {W}/settings.json")
    servers = json.loads(sh_in(hp, "b", f"cat {W}/.claude.json")).get("mcpServers")
    evil = {"command": "sh", "args": ["-c", f"touch /tmp/{MARK}"], "type": "stdio"}
    plant = (
        f"python3 - <<'PY'\nimport json\np = '{W}/.claude.json'\ns = json.load(open(p))\n"
        f"s.setdefault('mcpServers', {{}})['evil'] = {evil!r}\njson.dump(s, open(p, 'w'))\nPY"
    )
    sh_in(hp, "a", plant)
    assert "evil" in sh_in(hp, "a", f"cat {W}/.claude.json")  # its own state: its own affair
    hooks = {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "id"}]}]}}
    sh_in(hp, "a", f"echo '{json.dumps(hooks)}' > {W}/settings.json")
    # a spawn by the parent later, B's view is what it was
    spawn(hp, "b")
    assert sh_in(hp, "b", f"cat {W}/settings.json") == settings == '{"model": "opus"}'
    assert json.loads(sh_in(hp, "b", f"cat {W}/.claude.json")).get("mcpServers") == servers
    listed = hp.in_worker(hp.root / "b", "claude", "mcp", "list", check=False)
    assert "evil" not in listed, listed
    assert sh_in(hp, "b", f"ls /tmp/{MARK} 2>&1") != f"/tmp/{MARK}"


def test_a_worker_cannot_read_another_workers_transcripts(hp: HostParent) -> None:
    secret = f"transcript-{MARK}"
    sh_in(hp, "a", f"mkdir -p {W}/projects/-x && echo {secret} > {W}/projects/-x/t.jsonl")
    assert sh_in(hp, "a", f"cat {W}/projects/-x/t.jsonl") == secret
    found = sh_in(
        hp,
        "b",
        f"grep -rls {secret} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
        "--exclude-dir=usr 2>/dev/null",
    )
    assert found == "", found
    assert "No such file" in sh_in(hp, "b", f"ls {W}/projects/-x 2>&1")


def spawn(hp: HostParent, name: str) -> str:
    """`hal-agent spawn` in the parent (claudy's fast path would skip the parent for a
    running worker): its output, which holds what it logged."""
    code, out = hp.run(["hal-agent", "spawn", str(hp.root / name), "--no-attach"])
    assert code == 0, out
    return out


def plant_traps(hp: HostParent, outside: str) -> None:
    """In worker a: `.claude.json` a symlink to a parent-only file, Chroma's token file a
    FIFO. In worker b: the token file hard-linked, `.claude.json` a FIFO (b's Claude Code
    may replace that one itself). Attempts at the credentials file and the mount points,
    which must fail at once."""
    sh_in(hp, "a", f"rm -f {W}/.claude.json && ln -s {outside} {W}/.claude.json")
    sh_in(hp, "a", f"rm -f {W}/.hal-chroma-token && mkfifo {W}/.hal-chroma-token")
    sh_in(hp, "b", f"echo {MARK} > {W}/.hal-chroma-token && ln {W}/.hal-chroma-token {W}/alias")
    sh_in(hp, "b", f"rm -f {W}/.claude.json && mkfifo {W}/.claude.json")
    out = sh_in(
        hp,
        "a",
        f"rm {W}/.credentials.json 2>&1; mv {W}/.credentials.json {W}/c 2>&1; "
        f"ln -sf {outside} {W}/.credentials.json 2>&1; "
        f"ln {W}/.credentials.json {W}/cred-alias 2>&1; "
        f"rm -rf {W}/plugins 2>&1; ln -s {outside} {W}/plugins/x 2>&1",
    )
    assert "Device or resource busy" in out and "Read-only" in out, out
    assert "cred-alias" not in sh_in(hp, "a", f"ls {W}"), out
    listing = sh_in(hp, "a", f"stat -c '%F %h %n' {W}/.credentials.json {W}/plugins")
    lines = listing.splitlines()
    assert lines[0] == f"regular file 1 {W}/.credentials.json", listing
    assert lines[1].startswith("directory "), listing


def test_planted_links_and_fifos_are_never_followed_and_never_hang_the_parent(
    hp: HostParent,
) -> None:
    outside = "/run/hal9000/attack-target.json"
    hp.sh(f'printf \'{{"parent": "{MARK}"}}\' > {outside}; chmod 600 {outside}')
    stamp = hp.sh(f"stat -c '%s %Y %i' {outside}")
    plant_traps(hp, outside)
    c = hp.root / "c"
    hp.project("c")
    said: list[str] = []
    times = {
        "spawn of a": timed(lambda: said.append(spawn(hp, "a"))),
        "spawn of b": timed(lambda: said.append(spawn(hp, "b"))),
        "spawn of a new worker": timed(lambda: hp.claudy("-d", str(c))),
        "auth import": timed(lambda: said.append(hp.claudy("auth", "import").stderr)),
        "auth status": timed(lambda: hp.claudy("auth", "status")),
        "sync": timed(lambda: hp.claudy("sync", "--force")),
    }
    # a service change: the MCP servers re-registered in every worker, the traps left alone
    res = hp.claudy("config", "set", "services.probe.enabled", "true")
    assert res.returncode == 0, res.stderr
    t0 = time.monotonic()
    state_c = f"{state_dir(hp, 'c')}/.claude.json"
    assert retry_until(lambda: "probe" in hp.sh(f"cat {state_c}"), 30, raises=False)
    times["service change"] = time.monotonic() - t0
    hp.claudy("config", "set", "services.probe.enabled", "false")
    print("\ntimes (s):", {k: round(v, 1) for k, v in times.items()})
    assert all(t < QUICK for t in times.values()), times
    # nothing outside read or written; the traps are where they were
    assert hp.sh(f"stat -c '%s %Y %i' {outside}") == stamp
    dirs = f"{state_dir(hp, 'a')} {state_dir(hp, 'b')} {state_dir(hp, 'c')}"
    assert hp.sh(f'grep -rlsD skip \'"parent": "{MARK}\' {dirs} || true') == ""
    a, b = state_dir(hp, "a"), state_dir(hp, "b")
    assert hp.sh(f"stat -c %F {a}/.claude.json") == "symbolic link"
    assert hp.sh(f"stat -c %F {a}/.hal-chroma-token") == "fifo"
    assert hp.sh(f"stat -c '%F %h' {b}/.hal-chroma-token") == "regular file 2"
    assert hp.sh(f"cat {b}/alias") == MARK
    # the parent said so, and carried on: the workers run, the new one got its state
    for name in ("a", "b", "c"):
        assert hp.in_worker(hp.root / name, "hal-worker", "pid").strip().isdigit()
    assert "hasTrustDialogAccepted" in hp.sh(f"cat {state_c}")
    logs = "\n".join(said) + hp.logs(400)
    assert "a symlink" in logs and "a hard link" in logs and "a FIFO" in logs, logs[-4000:]


def test_a_credentials_file_filled_by_a_worker_never_hangs_status_and_import_mends_it(
    hp: HostParent,
) -> None:
    sh_in(hp, "b", f"head -c 3000000 /dev/zero > {W}/.credentials.json")
    t0 = time.monotonic()
    res = hp.claudy("auth", "status")
    assert time.monotonic() - t0 < QUICK
    assert "unreadable" in res.stdout + res.stderr or res.returncode != 0, res.stdout
    res = hp.claudy("auth", "import")
    assert res.returncode == 0, res.stderr
    # one file, rewritten in place: every worker sees the credential again
    for name in ("a", "c"):
        doc = json.loads(sh_in(hp, name, f"cat {W}/.credentials.json"))
        assert doc["claudeAiOauth"]["accessToken"] == TOKEN
    assert TOKEN not in hp.sh(f"cat {state_dir(hp, 'c')}/.claude.json")


def test_claude_starts_in_a_worker_whose_credentials_are_empty(hp: HostParent) -> None:
    """`{}` (no login yet, or an API key imported) is no login to Claude Code, not an error."""
    hp.sh(f"printf '{{}}\\n' > {IMAGE.claude_home}/.credentials.json")
    try:
        out = hp.in_worker(hp.root / "c", "claude", "auth", "status", check=False)
        assert "corrupt" not in out.lower(), out
        out = hp.in_worker(hp.root / "c", "claude", "--version")
        assert "Claude Code" in out, out
    finally:
        assert hp.claudy("auth", "import").returncode == 0


def test_sync_never_writes_through_a_directory_link_in_the_shared_home(hp: HostParent) -> None:
    """Workers can no longer write the shared home (see above); a link planted there before
    (when every worker mounted it rw) is still never followed by `claudy sync`."""
    home = IMAGE.claude_home
    hp.sh(f"mkdir -p /run/hal9000/elsewhere && rm -rf {home}/skills/s")
    hp.sh(f"ln -s /run/hal9000/elsewhere {home}/skills/s && ln -s /run/hal9000 {home}/commands2")
    hp.sh(f"mv {home}/agents {home}/agents.real && ln -s /run/hal9000/elsewhere {home}/agents")
    t0 = time.monotonic()
    res = hp.claudy("sync", "--force")
    assert time.monotonic() - t0 < QUICK
    assert res.returncode == 0, res.stderr
    assert "refused" in res.stdout and "skills/s/SKILL.md" in res.stdout, res.stdout
    assert hp.sh("ls -A /run/hal9000/elsewhere") == ""
    # the link where a mount's source belongs is moved aside; the next sync fills the
    # directory made in its place
    assert hp.sh(f"stat -c %F {home}/agents") == "directory"
    assert hp.sh(f"ls -d {home}/agents.hal-refused-*")
    assert hp.claudy("sync").returncode == 0
    assert hp.sh(f"cat {home}/agents/a.md") == "agent"
    assert hp.sh(f"stat -c %F {home}/skills/s") == "symbolic link"  # left alone
