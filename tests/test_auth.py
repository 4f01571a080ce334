"""Credentials and config sync on real files: finding, storing, reporting, never overwriting.

The engine-level path (the exec stdin, a worker logged in, the canary sweep) is in
test_shared_e2e.py; these cover each rule on its own, fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hal_common import credentials
from hal_common.credentials import Credential, CredentialError
from hal_common.errors import UsageError
from hal_common.protocol import AuthStatus
from host_shim.adapters import auth, config_sync
from parent_agent.adapters import claude_home
from parent_agent.adapters import config_sync as apply_sync

UID, GID = os.getuid(), os.getgid()


def oauth_doc(token: str, expires_ms: int, refresh: str | None = "rt-1") -> str:
    return json.dumps({"claudeAiOauth": {"accessToken": token, "refreshToken": refresh,
                                         "expiresAt": expires_ms, "scopes": ["user:inference"],
                                         "subscriptionType": "max"}})  # fmt: skip


def future_ms(hours: float) -> int:
    return int((time.time() + hours * 3600) * 1000)


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(root)}|{stat.S_IMODE(st.st_mode)}|{st.st_mtime_ns}".encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# --- finding the host's credential -----------------------------------------------------------


def test_the_linux_credentials_file_comes_first(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / ".credentials.json").write_text(oauth_doc("sk-ant-oat01-x", 1))
    found = auth.find({"HOME": str(tmp_path), "PATH": "/nonexistent"})
    assert found.credential is not None
    assert found.credential.kind == "oauth"
    assert found.credential.source == "~/.claude/.credentials.json"


def test_claude_config_dir_moves_the_file(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / ".credentials.json").write_text(oauth_doc("sk-ant-oat01-x", 1))
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg"), "PATH": ""}
    found = auth.find(env)
    assert found.credential is not None and found.credential.source.endswith(
        "cfg/.credentials.json"
    )


def fake_security(bin_dir: Path, payload: str, log: Path) -> None:
    """A stand-in for macOS `security`: answers the item claudy asks for, records its argv."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "security"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'if [ "$1" = find-generic-password ] && [ "$3" = "Claude Code-credentials" ] '
        '&& [ "$4" = -w ]; then\n'
        f"  cat <<'EOF'\n{payload}\nEOF\n  exit 0\nfi\n"
        "echo 'security: SecKeychainSearchCopyNext: The specified item could not be found.' >&2\n"
        "exit 44\n"
    )
    script.chmod(0o755)


def test_the_macos_keychain_through_a_stand_in_security(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    fake_security(tmp_path / "bin", oauth_doc("sk-ant-oat01-mac", future_ms(5)), log)
    found = auth.find({"HOME": str(tmp_path), "PATH": str(tmp_path / "bin")})
    assert found.credential is not None
    assert found.credential.kind == "oauth"
    assert "Keychain" in found.credential.source
    assert json.loads(found.credential.secret)["claudeAiOauth"]["accessToken"] == "sk-ant-oat01-mac"
    assert log.read_text().split() == [
        "find-generic-password",
        "-s",
        "Claude",
        "Code-credentials",
        "-w",
    ]


def test_a_keychain_without_the_item_finds_nothing(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    fake_security(tmp_path / "bin", "", log)
    script = tmp_path / "bin" / "security"
    script.write_text("#!/bin/sh\nexit 44\n")
    found = auth.find({"HOME": str(tmp_path), "PATH": str(tmp_path / "bin")})
    assert found.credential is None and found.notes == []


def test_an_env_api_key_is_refused_with_the_reason(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "", "ANTHROPIC_API_KEY": "sk-ant-api03-envkey"}
    found = auth.find(env)
    assert found.credential is None
    assert any("ANTHROPIC_API_KEY is set but not imported" in n and "--from-env" in n
               for n in found.notes)  # fmt: skip
    opted = auth.find(env, from_env=True)
    assert opted.credential is not None and opted.credential.kind == "api-key"


def test_claudy_refuses_an_env_only_key_as_a_user_sees_it(tmp_path: Path) -> None:
    """The real command, with no parent needed: it stops before reaching the engine."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "ANTHROPIC_API_KEY": "sk-ant-api03-envonly", "PATH": "/usr/bin:/bin"}  # fmt: skip
    res = subprocess.run([sys.executable, "-m", "host_shim", "auth", "import"], env=env,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 1
    assert "ANTHROPIC_API_KEY is set but not imported" in res.stderr
    assert "no Claude credential found" in res.stderr
    assert "sk-ant-api03-envonly" not in res.stderr + res.stdout


@pytest.mark.parametrize(
    ("text", "kind"),
    [("sk-ant-oat01-abc\n", "token"), ("  sk-ant-api03-abc", "api-key"),
     (oauth_doc("sk-ant-oat01-y", 5), "oauth")],
)  # fmt: skip
def test_a_token_file_is_classified(tmp_path: Path, text: str, kind: str) -> None:
    f = tmp_path / "tok"
    f.write_text(text)
    found = auth.find({"HOME": str(tmp_path), "PATH": ""}, token_file=str(f))
    assert found.credential is not None and found.credential.kind == kind


def test_a_bad_token_file_says_what_is_wrong_without_echoing_it(tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text("hunter2-not-a-token")
    with pytest.raises(UsageError) as e:
        auth.find({}, token_file=str(f))
    assert "neither" in e.value.message and "hunter2" not in e.value.message
    with pytest.raises(UsageError, match="no such file"):
        auth.find({}, token_file=str(tmp_path / "absent"))


def test_the_wire_document_round_trips_and_refuses_junk() -> None:
    cred = Credential("token", "file t", "sk-ant-oat01-w")
    assert credentials.from_wire(cred.wire()) == cred
    assert "sk-ant" not in repr(cred)
    for junk in (b"", b"[]", b'{"kind":"x"}', b'{"kind":"oauth","secret":"{}","source":"s"}'):
        with pytest.raises(CredentialError):
            credentials.from_wire(junk)


# --- storing it in the Claude home ----------------------------------------------------------


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


def test_claudy_imports_only_what_is_newer() -> None:
    old = Credential("oauth", "h", oauth_doc("a", future_ms(1)))
    new = Credential("oauth", "h", oauth_doc("b", future_ms(9)))
    assert auth.should_import(old, AuthStatus(present=False))
    assert not auth.should_import(old, AuthStatus(present=True, fingerprint=old.fingerprint()))
    # rotated inside (the parent's expires later): the host's older copy must not win
    stored = AuthStatus(present=True, fingerprint="x", expires_at=time.time() + 5 * 3600)
    assert not auth.should_import(old, stored)
    assert auth.should_import(new, stored)  # the user logged in again on the host


# --- config sync ------------------------------------------------------------------------------


def host_claude(tmp_path: Path) -> Path:
    d = tmp_path / "host" / ".claude"
    (d / "agents").mkdir(parents=True)
    (d / "commands").mkdir()
    (d / "skills" / "review").mkdir(parents=True)
    (d / "plugins" / "marketplaces" / "m" / ".git").mkdir(parents=True)
    (d / "settings.json").write_text('{"theme": "dark"}\n')
    (d / "CLAUDE.md").write_text("# house rules\n")
    (d / "agents" / "a.md").write_text("agent a\n")
    (d / "commands" / "c.md").write_text("command c\n")
    (d / "skills" / "review" / "SKILL.md").write_text("skill\n")
    (d / "plugins" / "marketplaces" / "m" / ".git" / "HEAD").write_text("ref\n")
    (d / "plugins" / "known_marketplaces.json").write_text(
        json.dumps({"m": {"installLocation": f"{d}/plugins/marketplaces/m"}})
    )
    (d / ".credentials.json").write_text(oauth_doc("sk-ant-oat01-never-synced", 1))
    (d / "history.jsonl").write_text("private\n")
    return d


def test_sync_copies_config_rewrites_plugin_paths_and_leaves_secrets(tmp_path: Path) -> None:
    host = host_claude(tmp_path)
    state = tmp_path / "host" / ".claude.json"
    state.write_text(json.dumps({"theme": "light", "oauthAccount": {"emailAddress": "u@x"},
                                 "mcpServers": {"x": {}}, "projects": {"/h": {}}}))  # fmt: skip
    before = tree_hash(tmp_path / "host")
    data, count = config_sync.pack(host, state)
    assert count == 6  # settings, CLAUDE.md, agent, command, skill, known_marketplaces
    home = tmp_path / "inside"
    plan = apply_sync.apply(home, data, UID, GID, tmp_path / "locks")
    assert sorted(plan.new) == sorted(
        ["CLAUDE.md", "agents/a.md", "commands/c.md", "plugins/known_marketplaces.json",
         "settings.json", "skills/review/SKILL.md"])  # fmt: skip
    assert not (home / ".credentials.json").exists() and not (home / "history.jsonl").exists()
    assert not (home / "plugins" / "marketplaces" / "m" / ".git").exists()
    known = json.loads((home / "plugins" / "known_marketplaces.json").read_text())
    assert known["m"]["installLocation"] == "/home/hal/.claude/plugins/marketplaces/m"
    inside_state = json.loads((home / ".claude.json").read_text())
    assert inside_state["oauthAccount"] == {"emailAddress": "u@x"}
    assert "mcpServers" not in inside_state and "projects" not in inside_state
    assert tree_hash(tmp_path / "host") == before  # the host is only read


def test_sync_never_overwrites_a_file_changed_inside(tmp_path: Path) -> None:
    host = host_claude(tmp_path)
    state = tmp_path / "host" / ".claude.json"
    home = tmp_path / "inside"
    apply_sync.apply(home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks")
    (home / "CLAUDE.md").write_text("# edited inside\n")  # the user changed it in a worker
    (host / "CLAUDE.md").write_text("# edited on the host\n")
    (host / "agents" / "a.md").write_text("agent a v2\n")  # changed only on the host
    (host / "agents" / "b.md").write_text("agent b\n")
    plan = apply_sync.apply(home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks")
    assert plan.kept == ["CLAUDE.md"] and plan.updated == ["agents/a.md"]
    assert plan.new == ["agents/b.md"]
    assert (home / "CLAUDE.md").read_text() == "# edited inside\n"
    assert (home / "agents" / "a.md").read_text() == "agent a v2\n"
    lines = apply_sync.report(plan)
    assert "kept 1 changed inside, which differ from the host's:" in lines
    assert "  CLAUDE.md" in lines
    assert "    -# edited inside" in lines and "    +# edited on the host" in lines
    # the same sync again keeps saying so, and --force takes the host's copy
    assert apply_sync.apply(
        home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks"
    ).kept == ["CLAUDE.md"]
    forced = apply_sync.apply(
        home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks", force=True
    )
    assert forced.forced == ["CLAUDE.md"]
    assert (home / "CLAUDE.md").read_text() == "# edited on the host\n"


def test_the_sync_archive_cannot_escape_the_home(tmp_path: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UsageError, match="refusing"):
        apply_sync.apply(tmp_path / "home", buf.getvalue(), UID, GID, tmp_path / "locks")
    assert not (tmp_path / "etc").exists()
