"""Claude's files in the parent: the shared home, each worker's private state, credentials
stored private and their status never showing them."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from hal_common.credentials import Credential
from hal_common.layout import ParentLayout
from hal_testing.claude_files import future_ms, oauth_doc
from parent_agent.adapters import claude_home

UID, GID = os.getuid(), os.getgid()
MCP = {"memory-bank": {"type": "http", "url": "http://10.213.213.1:8812/mcp"}}


@pytest.fixture
def layout(tmp_path: Path) -> ParentLayout:
    return ParentLayout(
        run_dir=tmp_path / "run",
        claude_home=tmp_path / "claude",
        data_dir=tmp_path / "data",
    )


def state_of(layout: ParentLayout, session: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads((layout.worker_state(session) / ".claude.json").read_text())
    return doc


def test_stored_credentials_are_private_and_status_never_shows_them(layout: ParentLayout) -> None:
    home = layout.claude_home
    secret = "sk-ant-oat01-SECRETMARK"  # noqa: S105 - a fake, to look for
    cred = Credential("oauth", "~/.claude/.credentials.json", oauth_doc(secret, future_ms(7)))
    claude_home.store_credential(layout, cred, UID, GID)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in (".credentials.json", ".hal-auth.json"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    st = claude_home.auth_status(home)
    assert st["present"] and st["kind"] == "oauth" and st["refreshable"]
    assert st["source"] == "~/.claude/.credentials.json"
    assert 6.9 * 3600 < st["expires_at"] - time.time() < 7.1 * 3600
    assert st["refreshed_since_import"] is False
    assert secret not in json.dumps(st)
    assert secret not in (home / ".hal-auth.json").read_text()
    # Claude refreshes inside: the token changes, and status says the host copy is stale
    (home / ".credentials.json").write_text(oauth_doc("sk-ant-oat01-NEW", future_ms(8)))
    assert claude_home.auth_status(home)["refreshed_since_import"] is True


def test_the_credentials_file_keeps_its_inode_workers_have_it_bind_mounted(
    layout: ParentLayout,
) -> None:
    claude_home.ensure_home(layout.claude_home, UID, GID)
    creds = layout.claude_home / ".credentials.json"
    assert creds.read_text() == "{}\n"  # always there, a regular file: the mount's source
    ino = creds.stat().st_ino
    cred = Credential("oauth", "f", oauth_doc("sk-ant-oat01-a", future_ms(7)))
    claude_home.store_credential(layout, cred, UID, GID)
    claude_home.store_credential(layout, Credential("api-key", "f", "sk-ant-api03-k"), UID, GID)
    assert creds.stat().st_ino == ino and creds.read_text() == "{}\n"
    assert claude_home.auth_status(layout.claude_home)["kind"] == "api-key"


def test_an_api_key_goes_to_primary_api_key_and_replaces_oauth(layout: ParentLayout) -> None:
    home = layout.claude_home
    claude_home.store_credential(layout, Credential("token", "f", "sk-ant-oat01-t"), UID, GID)
    doc = json.loads((home / ".credentials.json").read_text())["claudeAiOauth"]
    assert doc["accessToken"] == "sk-ant-oat01-t" and doc["refreshToken"] is None
    assert doc["expiresAt"] / 1000 - time.time() > 360 * 86400  # a year: setup-token's life
    claude_home.store_credential(layout, Credential("api-key", "f", "sk-ant-api03-k"), UID, GID)
    assert json.loads((home / ".credentials.json").read_text()) == {}
    state = json.loads((home / ".claude.json").read_text())
    assert state["primaryApiKey"] == "sk-ant-api03-k"
    assert stat.S_IMODE((home / ".claude.json").stat().st_mode) == 0o600
    assert claude_home.auth_status(home)["kind"] == "api-key"


def test_status_with_nothing_imported(tmp_path: Path) -> None:
    st = claude_home.auth_status(tmp_path)
    assert st["present"] is False


def test_a_worker_gets_private_state_seeded_from_the_old_shared_one(layout: ParentLayout) -> None:
    home = layout.claude_home
    home.mkdir()
    old = {
        "theme": "dark",
        "hasCompletedOnboarding": True,
        "projects": {"/p/a": {"hasTrustDialogAccepted": True, "x": 1}, "/p/b": {"y": 2}},
        "mcpServers": {"mine": {"type": "stdio", "command": "x"}, "memory-bank": {"url": "old"}},
    }
    (home / ".claude.json").write_text(json.dumps(old))
    (home / ".hal-mcp.json").write_text('["memory-bank"]')
    claude_home.prepare_worker(layout, "a", "/p/a", UID, GID, MCP, "tok")
    st = state_of(layout, "a")
    assert st["theme"] == "dark" and st["hasCompletedOnboarding"] is True
    assert st["projects"] == {"/p/a": {"hasTrustDialogAccepted": True, "x": 1}}  # only its own
    assert st["mcpServers"] == {"mine": {"type": "stdio", "command": "x"}, **MCP}
    d = layout.worker_state("a")
    assert (d / ".hal-chroma-token").read_text() == "tok"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    # mount points for the shared config, and its sources in the shared home
    for name in ("settings.json", "CLAUDE.md", ".credentials.json"):
        assert (d / name).is_file() and (home / name).is_file()
    for name in ("agents", "commands", "skills", "plugins"):
        assert (d / name).is_dir() and (home / name).is_dir()
    assert json.loads((layout.managed_dir / "managed-settings.json").read_text())


def test_the_worker_wins_over_the_base_hal_over_the_worker(layout: ParentLayout) -> None:
    claude_home.prepare_worker(layout, "a", "/p/a", UID, GID, MCP, None)
    path = layout.worker_state("a") / ".claude.json"
    mine = {**state_of(layout, "a"), "theme": "light", "mcpServers": {}}
    path.write_text(json.dumps(mine))
    claude_home.update_state(
        layout.claude_home, lambda s: {**s, "theme": "dark"}, UID, GID, layout.lock_dir
    )
    claude_home.prepare_worker(layout, "a", "/p/a", UID, GID, MCP, None)
    st = state_of(layout, "a")
    assert st["theme"] == "light" and st["mcpServers"] == MCP


def test_imports_and_service_changes_reach_every_worker(layout: ParentLayout) -> None:
    for s in ("a", "b"):
        claude_home.prepare_worker(layout, s, f"/p/{s}", UID, GID, MCP, "t1")
    claude_home.store_credential(layout, Credential("api-key", "f", "sk-ant-api03-k"), UID, GID)
    assert all(state_of(layout, s)["primaryApiKey"] == "sk-ant-api03-k" for s in ("a", "b"))
    new = {"chroma-mcp": {"type": "http", "url": "http://10.213.213.1:8811/mcp"}}
    claude_home.publish_services(layout, new, "t2")
    for s in ("a", "b"):
        assert state_of(layout, s)["mcpServers"] == new  # memory-bank, ours, gone
        assert (layout.worker_state(s) / ".hal-chroma-token").read_text() == "t2"
    cred = Credential("oauth", "f", oauth_doc("sk-ant-oat01-a", future_ms(7)))
    claude_home.store_credential(layout, cred, UID, GID)
    assert all("primaryApiKey" not in state_of(layout, s) for s in ("a", "b"))
    claude_home.publish_services(layout, new, None)
    assert not (layout.worker_state("a") / ".hal-chroma-token").exists()


def test_a_planted_link_or_fifo_in_a_worker_is_left_alone(
    layout: ParentLayout, tmp_path: Path
) -> None:
    for s in ("a", "b", "c"):
        claude_home.prepare_worker(layout, s, f"/p/{s}", UID, GID, MCP, "t1")
    outside = tmp_path / "outside.json"
    outside.write_text('{"parent": "secret"}')
    (layout.worker_state("a") / ".claude.json").unlink()
    (layout.worker_state("a") / ".claude.json").symlink_to(outside)
    (layout.worker_state("b") / ".claude.json").unlink()
    os.mkfifo(layout.worker_state("b") / ".claude.json")
    (layout.worker_state("c") / ".hal-chroma-token").unlink()
    (layout.worker_state("c") / ".hal-chroma-token").symlink_to(outside)
    t0 = time.monotonic()
    claude_home.publish_services(layout, {}, "t2")
    claude_home.store_credential(layout, Credential("api-key", "f", "sk-ant-api03-k"), UID, GID)
    for s in ("a", "b"):  # a spawn too: the link and FIFO stay, the spawn carries on
        claude_home.prepare_worker(layout, s, f"/p/{s}", UID, GID, MCP, "t1")
    assert time.monotonic() - t0 < 5
    assert outside.read_text() == '{"parent": "secret"}'
    assert (layout.worker_state("a") / ".claude.json").is_symlink()
    assert stat.S_ISFIFO((layout.worker_state("b") / ".claude.json").lstat().st_mode)
    assert (layout.worker_state("c") / ".hal-chroma-token").is_symlink()
    assert state_of(layout, "c")["primaryApiKey"] == "sk-ant-api03-k"  # the others still served


def test_a_link_at_a_mount_point_is_moved_aside(layout: ParentLayout, tmp_path: Path) -> None:
    claude_home.prepare_worker(layout, "a", "/p/a", UID, GID, MCP, None)
    d = layout.worker_state("a")
    (d / "agents").rmdir()
    (d / "agents").symlink_to(tmp_path)
    (d / "settings.json").unlink()
    (d / "settings.json").symlink_to("/etc/passwd")
    claude_home.prepare_worker(layout, "a", "/p/a", UID, GID, MCP, None)
    assert (d / "agents").is_dir() and not (d / "agents").is_symlink()
    assert (d / "settings.json").is_file() and not (d / "settings.json").is_symlink()
    assert len(list(d.glob("*.hal-refused-*"))) == 2
