"""End to end, issue 5: credentials, inherited config and the shared services, on a real
parent (Docker-in-Docker) with real workers running the real Claude Code.

The host is a fake home with a logged-in `~/.claude` whose credential holds a unique marker
(the canary). Real clients talk to the services from inside the workers: `claude mcp list`,
ChromaDB's REST API, and MCP sessions (tests/worker_probe.py, run by the worker's python3).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import container_name, session_name
from hal_testing import canary
from hal_testing.engine import GID, UID
from hal_testing.host import IMAGE, HostParent
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

CANARY = f"sk-ant-oat01-CANARY{uuid.uuid4().hex}"
PROBE = Path(__file__).with_name("worker_probe.py")
MCP = {  # through the gates on the workers' gateway
    "chroma-mcp": "http://10.213.213.1:8811/mcp",
    "memory-bank": "http://10.213.213.1:8812/mcp",
    "scratch": "http://10.213.213.1:8820/mcp",
}


def host_claude(home: Path) -> None:
    d = home / ".claude"
    for sub in ("agents", "commands", "skills/reviewer", "plugins"):
        (d / sub).mkdir(parents=True)
    expires = int((time.time() + 6 * 3600) * 1000)
    (d / ".credentials.json").write_text(
        json.dumps(
            {
                "claudeAiOauth": {
                    "accessToken": CANARY,
                    "refreshToken": CANARY + "-refresh",
                    "expiresAt": expires,
                    "scopes": ["user:inference", "user:profile"],
                    "subscriptionType": "max",
                }
            }
        )
    )
    (d / ".credentials.json").chmod(0o600)
    (d / "settings.json").write_text('{"model": "opus", "env": {"HAL_FROM_HOST": "1"}}\n')
    (d / "CLAUDE.md").write_text("# Always answer in haiku\n")
    (d / "agents" / "reviewer.md").write_text("---\nname: reviewer\n---\nReview code.\n")
    (d / "commands" / "ship.md").write_text("Ship it.\n")
    (d / "skills" / "reviewer" / "SKILL.md").write_text("---\nname: reviewer\n---\n")
    (d / "plugins" / "known_marketplaces.json").write_text(
        json.dumps({"house": {"installLocation": f"{d}/plugins/marketplaces/house"}})
    )
    (home / ".claude.json").write_text(
        json.dumps({"oauthAccount": {"emailAddress": "u@x.test"}, "theme": "dark"})
    )
    for p in [home, *home.rglob("*")]:
        os.chown(p, UID, GID, follow_symlinks=False)


def in_stream(chunks: Iterator[bytes], needle: bytes) -> bool:
    """Whether `needle` occurs in a byte stream (also across chunk boundaries)."""
    tail = b""
    for chunk in chunks:
        if needle in tail + chunk:
            return True
        tail = chunk[-len(needle) :]
    return False


def tree_digest(home: Path) -> str:
    """Names, modes, owners, times and bytes of the host's ~/.claude and ~/.claude.json."""
    h = hashlib.sha256()
    claude = home / ".claude"
    for p in sorted([claude, *claude.rglob("*"), home / ".claude.json"]):
        st = p.lstat()
        h.update(f"{p}|{stat.filemode(st.st_mode)}|{st.st_uid}|{st.st_mtime_ns}".encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def shared(host_parents: Callable[..., HostParent]) -> HostParent:
    """A parent for a host user logged in to Claude, workers of the standard image, and a stdio
    MCP server the user lists, behind the bridge and shared like the built-ins."""
    s = host_parents(
        "sh",
        worker='image = "hal9000/worker:standard"\nmemory = "1g"\n',
        extra='\n[services.scratch]\nstdio = ["chroma-mcp", "--client-type", "ephemeral"]\n'
        "port = 8820\n",
        home="home",
        env={"SUDO_UID": str(UID), "SUDO_GID": str(GID)},
        project_files=(PROBE,),
    )
    host_claude(s.home)
    s.digest_before = tree_digest(s.home)  # type: ignore[attr-defined]
    return s


def probe(s: HostParent, proj: Path, *args: str) -> Any:
    """tests/e2e/worker_probe.py, run by the worker's python3: its JSON answer."""
    return json.loads(s.in_worker(proj, "python3", f"{proj}/worker_probe.py", *args))


def wait_services(s: HostParent, timeout: float = 120) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        found = s.services()
        if found is None:
            return None
        return found if all(x["ok"] or x["state"] == "disabled" for x in found) else None

    assert retry_until(lambda: ready() is not None, timeout, raises=False), s.sh(
        "hal-agent services; tail -n 20 /data/logs/*.log"
    )
    return ready() or []


def test_first_claudy_imports_the_credential_and_config(shared: HostParent) -> None:
    proj = shared.project("one")
    res = shared.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    assert "imported the Claude credential from ~/.claude/.credentials.json" in res.stderr
    assert "your Claude config: copied 6 new" in res.stderr
    home = IMAGE.claude_home
    # private: the directory 0700, the files 0600, all the worker user's
    listing = shared.sh(
        f"stat -c '%a %u:%g %n' {home} {home}/.credentials.json {home}/.claude.json"
    )
    lines = listing.split("\n")
    assert lines[0].startswith(f"700 {UID}:{GID}"), listing
    assert lines[1].startswith(f"600 {UID}:{GID}") and lines[2].startswith(f"600 {UID}:{GID}")
    # the inherited config is there; secrets and history are not copied twice
    for rel in (
        "settings.json",
        "CLAUDE.md",
        "agents/reviewer.md",
        "commands/ship.md",
        "skills/reviewer/SKILL.md",
        "plugins/known_marketplaces.json",
    ):
        host = (shared.home / ".claude" / rel).read_text()
        wanted = host.replace(str(shared.home / ".claude"), "/home/hal/.claude").strip()
        assert shared.sh(f"cat {home}/{rel}") == wanted
    # the worker's own state: onboarding done, its project trusted, the host's keys
    private = IMAGE.worker_state(session_name(str(proj)))
    assert shared.sh(f"stat -c '%a %u:%g' {private}") == f"700 {UID}:{GID}"
    state = json.loads(shared.sh(f"cat {private}/.claude.json"))
    assert state["hasCompletedOnboarding"] is True
    assert state["projects"][str(proj)]["hasTrustDialogAccepted"] is True
    assert state["oauthAccount"] == {"emailAddress": "u@x.test"}
    # auth status says what and from where, never the secret
    res = shared.claudy("auth", "status")
    assert res.returncode == 0, res.stderr
    assert "oauth from ~/.claude/.credentials.json" in res.stdout
    assert "subscription: max" in res.stdout and "same as imported" in res.stdout
    assert CANARY not in res.stdout + res.stderr


def test_the_worker_sees_it_all_read_only_plugins_included(shared: HostParent) -> None:
    proj = shared.project("one")
    w = "/home/hal/.claude"
    assert shared.in_worker(proj, "sh", "-c", f"cat {w}/CLAUDE.md") == "# Always answer in haiku"
    # plugins are shared read-only
    out = shared.inner(
        "exec",
        container_name(session_name(str(proj))),
        "sh",
        "-c",
        f"touch {w}/plugins/x 2>&1; echo rc=$?",
        check=False,
    )
    assert "Read-only file system" in out and "rc=1" in out


def test_claude_starts_logged_in_in_a_terminal(shared: HostParent, server: libtmux.Server) -> None:
    proj = shared.project("one")
    session = server.new_session("u", x=130, y=40, window_command=shared.claudy_argv(str(proj)))
    pane = session.windows[0].panes[0]

    def screen() -> str:
        return "\n".join(pane.capture_pane())

    assert retry_until(lambda: "Claude Code v" in screen(), 90, raises=False), screen()
    assert retry_until(
        lambda: "Claude Max" in screen() or "Claude API" in screen(), 30, raises=False
    ), screen()
    assert "Not logged in" not in screen()


def test_claude_mcp_list_shows_each_shared_server_connected(shared: HostParent) -> None:
    wait_services(shared)
    proj = shared.project("one")
    out = shared.in_worker(proj, "claude", "mcp", "list")
    for name, url in MCP.items():
        line = next((ln for ln in out.splitlines() if ln.startswith(f"{name}:")), "")
        assert url in line and "Connected" in line, out


def test_chromadb_written_in_one_worker_is_read_in_another(shared: HostParent) -> None:
    wait_services(shared)
    one, two = shared.project("one"), shared.project("two")
    assert shared.claudy("-d", str(two)).returncode == 0
    base = "/api/v2/tenants/default_tenant/databases/default_database/collections"
    # no token, no data
    refused = probe(shared, one, "chroma-noauth", "GET", base)
    assert refused["status"] in (401, 403), refused
    made = probe(shared, one, "chroma", "POST", base, json.dumps({"name": "shared_notes"}))
    assert made["status"] == 200, made
    cid = made["body"]["id"]
    add = {"ids": ["n1"], "documents": ["written by worker one"], "embeddings": [[0.1, 0.2, 0.3]]}
    added = probe(shared, one, "chroma", "POST", f"{base}/{cid}/add", json.dumps(add))
    assert added["status"] in (200, 201), added
    listed = probe(shared, two, "chroma", "GET", base)
    ids = {c["name"]: c["id"] for c in listed["body"]}
    assert ids.get("shared_notes") == cid, listed
    got = probe(shared, two, "chroma", "POST", f"{base}/{cid}/get", json.dumps({"ids": ["n1"]}))
    assert got["body"]["documents"] == ["written by worker one"], got
    # and through Chroma's MCP server (its built-in embedding model, offline)
    r = probe(shared, two, "mcp", MCP["chroma-mcp"], "list_collections", "{}")
    assert "shared_notes" in r["text"], r


def test_a_memory_bank_entry_written_over_mcp_is_read_from_another_worker(
    shared: HostParent,
) -> None:
    wait_services(shared)
    one, two = shared.project("one"), shared.project("two")
    assert shared.claudy("-d", str(two)).returncode == 0
    note = f"decided: sqlite {uuid.uuid4().hex[:8]}"
    args = {"projectName": "hal-test", "fileName": "decisions.md", "content": note}
    w = probe(shared, one, "mcp", MCP["memory-bank"], "memory_bank_write", json.dumps(args))
    assert not w["isError"], w
    where = json.dumps({"projectName": "hal-test", "fileName": "decisions.md"})
    r = probe(shared, two, "mcp", MCP["memory-bank"], "memory_bank_read", where)
    assert note in r["text"], r
    # one root, kept in the parent's data volume
    assert note in shared.sh("cat /data/services/memory-bank/hal-test/decisions.md")


def test_one_process_per_shared_mcp_server_serves_every_worker(shared: HostParent) -> None:
    wait_services(shared)
    one, two = shared.project("one"), shared.project("two")
    assert shared.claudy("-d", str(two)).returncode == 0
    for proj in (one, two):
        shared.in_worker(proj, "claude", "mcp", "list")
        for url in MCP.values():
            assert probe(shared, proj, "tools", url), url
    servers_of = (
        ("memory-bank", "mcp-server-memory-bank"),
        ("chroma-mcp", "chroma-mcp"),
        ("scratch", "chroma-mcp"),
    )
    for svc, needle in servers_of:
        top = shared.inner("top", f"hal9000-s-{svc}", "-eo", "pid,args")
        wrappers = ("mcp-proxy", "hal-chroma-mcp", "docker-init")
        servers = [
            ln for ln in top.splitlines() if needle in ln and not any(w in ln for w in wrappers)
        ]
        assert len(servers) == 1, top


def test_sync_keeps_a_file_changed_inside_and_says_so(shared: HostParent) -> None:
    """Workers see the shared config read-only: a change inside is one made in the parent
    (`claudy shell`), which every worker sees at once."""
    proj = shared.project("one")
    w = "/home/hal/.claude"
    shared.sh(f"echo '# edited in the worker' > {IMAGE.claude_home}/CLAUDE.md")
    host = shared.home / ".claude"
    before = {p: p.read_bytes() for p in host.rglob("*") if p.is_file()}
    dry = shared.claudy("sync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "kept 1 changed inside" in dry.stdout and "CLAUDE.md" in dry.stdout
    res = shared.claudy("sync")
    assert res.returncode == 0, res.stderr
    assert "CLAUDE.md" in res.stdout and "claudy sync --force" in res.stdout
    assert shared.in_worker(proj, "cat", f"{w}/CLAUDE.md") == "# edited in the worker"
    assert {p: p.read_bytes() for p in host.rglob("*") if p.is_file()} == before


def test_a_token_file_import_and_back(shared: HostParent) -> None:
    tok = shared.root.parent / "long-lived-token"
    tok.write_text("sk-ant-oat01-LONGLIVED" + uuid.uuid4().hex + "\n")
    tok.chmod(0o600)
    try:
        res = shared.claudy("auth", "import", "--token-file", str(tok))
        assert res.returncode == 0, res.stderr
        assert f"imported token from {tok}" in res.stdout
        st = json.loads(shared.claudy("auth", "status", "--json").stdout)
        validate("claudy-auth-status", st)
        assert st["parent"]["kind"] == "token" and not st["parent"]["refreshable"]
        assert st["parent"]["expires_at"] - time.time() > 360 * 86400
        assert st["host"]["same_as_parent"] is False
    finally:
        tok.unlink()
        res = shared.claudy("auth", "import")  # back to the host's login, for the canary
        assert res.returncode == 0 and "imported oauth" in res.stdout, res.stderr


def test_a_disabled_or_killed_service_never_stops_a_worker(shared: HostParent) -> None:
    wait_services(shared)
    res = shared.claudy("config", "set", "services.memory-bank.enabled", "false")
    assert res.returncode == 0, res.stderr
    try:

        def gone() -> bool:
            names = shared.inner("ps", "-a", "--format", "{{.Names}}")
            return "hal9000-s-memory-bank" not in names

        assert retry_until(gone, 30, raises=False)
        shared.inner("kill", "hal9000-s-chroma-mcp")  # its process killed: exit 137, no retry
        # the stdio server behind a bridge dies: the bridge still answers, calls fail
        top = shared.inner("top", "hal9000-s-scratch", "-eo", "pid,args")
        (pid,) = [
            ln.split()[0]
            for ln in top.splitlines()
            if "bin/chroma-mcp --client-type ephemeral" in ln
        ]
        shared.sh(f"kill -9 {pid}")  # docker top's pids are the parent's
        proj = shared.project("three")
        res = shared.claudy("-d", str(proj))
        assert res.returncode == 0, res.stderr
        assert shared.in_worker(proj, "hal-worker", "pid").strip().isdigit()
        out = shared.sh("hal-agent services")
        assert "memory-bank" in out and "disabled" in out
        assert "chroma-mcp" in out and "exited 137" in out
        assert "scratch" in out and "broken" in out and "behind the bridge exited" in out
        doctor = shared.sh("hal-agent doctor || true")
        assert "- service memory-bank (MCP): disabled" in doctor
        assert "✗ service chroma-mcp (MCP): exited 137" in doctor, doctor

        # the dashboard (the top pane of window 0 in the parent's tmux) says which and why
        def dash() -> str:
            return shared.sh(f"tmux -S {IMAGE.tmux_sock} capture-pane -p -t =hal:=dashboard.0")

        # each service's state comes with the loop's next probe (every 3 s): all of them, then
        shown = ("✗ chroma-mcp exited 137", "✗ scratch broken", "- memory-bank off")
        assert retry_until(lambda: all(s in dash() for s in shown), 20, raises=False), dash()
        # Claude in the new worker still starts, the dead server listed as failed
        listed = shared.in_worker(proj, "claude", "mcp", "list")
        assert "memory-bank" not in listed and "chroma-mcp" in listed, listed
    finally:
        # back on: the config brings memory-bank back; --restart the killed one
        res = shared.claudy("config", "set", "services.memory-bank.enabled", "true")
        assert res.returncode == 0, res.stderr
        out = shared.sh("hal-agent services --restart chroma-mcp --restart scratch")
        assert "restarted chroma-mcp, scratch" in out
    assert wait_services(shared)


def test_a_stopped_parent_from_an_older_image_is_made_anew(shared: HostParent) -> None:
    """After an upgrade, `claudy` recreates a stopped parent from the new image; its volumes
    (the Claude home with the credential, the inner images) stay."""
    proj = shared.project("one")
    old_id = shared.parent.id
    tag = shared.parent.attrs["Config"]["Image"]
    original = shared.dclient.images.get(tag)
    assert shared.claudy("stop", "--yes").returncode == 0
    newer, _ = shared.dclient.images.build(
        fileobj=io.BytesIO(f"FROM {tag}\nLABEL dev.hal9000.test-newer=1\n".encode()),
        tag=tag,
        rm=True,
    )
    try:
        res = shared.claudy("-d", str(proj))
        assert res.returncode == 0, res.stderr
        assert shared.parent.id != old_id and shared.parent.attrs["Image"] == newer.id
        assert "older hal-9000" not in res.stderr and "loading" not in res.stderr
        assert "imported" not in res.stderr  # the credential stayed in its volume
        shared.sh(f"test -s {IMAGE.claude_home}/.credentials.json")
    finally:
        repo, _, version = tag.rpartition(":")
        original.tag(repo, version)  # the image the other tests and the benchmark build


def test_the_canary_is_nowhere_but_the_credentials_file(shared: HostParent) -> None:
    """Marker sweep: inspect data, every process's env and argv, image histories and layers,
    the logs, tmux screens and scrollback. Only the 0600 file may hold it."""
    wait_services(shared)
    hits = canary.sweep(shared, CANARY)
    for img in ("hal9000/parent:0.1.0", "hal9000/worker:standard", "hal9000/services:latest"):
        image = shared.dclient.images.get(img)
        if CANARY in json.dumps(image.history()):
            hits.append(f"history of {img} (host engine)")
        if in_stream(image.save(chunk_size=1 << 20), CANARY.encode()):
            hits.append(f"a layer of {img} (host engine)")
    expected = f"HIT file {IMAGE.claude_home}/.credentials.json"
    assert hits == [expected], "\n".join(hits)
    mode = shared.sh(f"stat -c %a {IMAGE.claude_home}/.credentials.json")
    assert mode == "600"


def test_the_hosts_claude_dir_is_unchanged_byte_for_byte(shared: HostParent) -> None:
    assert tree_digest(shared.home) == shared.digest_before  # type: ignore[attr-defined]
