"""The Claude home in the parent: credentials stored private, their status never showing them."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from hal_common.credentials import Credential
from hal_testing.claude_files import future_ms, oauth_doc
from parent_agent.adapters import claude_home

UID, GID = os.getuid(), os.getgid()


def test_stored_credentials_are_private_and_status_never_shows_them(tmp_path: Path) -> None:
    home = tmp_path / "claude"
    secret = "sk-ant-oat01-SECRETMARK"  # noqa: S105 - a fake, to look for
    cred = Credential("oauth", "~/.claude/.credentials.json", oauth_doc(secret, future_ms(7)))
    claude_home.store_credential(home, cred, UID, GID, lock_dir=tmp_path / "locks")
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


def test_an_api_key_goes_to_primary_api_key_and_replaces_oauth(tmp_path: Path) -> None:
    home, locks = tmp_path / "claude", tmp_path / "locks"
    claude_home.store_credential(home, Credential("token", "f", "sk-ant-oat01-t"), UID, GID, locks)
    doc = json.loads((home / ".credentials.json").read_text())["claudeAiOauth"]
    assert doc["accessToken"] == "sk-ant-oat01-t" and doc["refreshToken"] is None
    assert doc["expiresAt"] / 1000 - time.time() > 360 * 86400  # a year: setup-token's life
    claude_home.store_credential(
        home, Credential("api-key", "f", "sk-ant-api03-k"), UID, GID, locks
    )
    assert not (home / ".credentials.json").exists()
    state = json.loads((home / ".claude.json").read_text())
    assert state["primaryApiKey"] == "sk-ant-api03-k"
    assert stat.S_IMODE((home / ".claude.json").stat().st_mode) == 0o600
    assert claude_home.auth_status(home)["kind"] == "api-key"


def test_status_with_nothing_imported(tmp_path: Path) -> None:
    st = claude_home.auth_status(tmp_path)
    assert st["present"] is False
