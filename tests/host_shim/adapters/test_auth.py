"""Finding the host's Claude credential: files, the macOS keychain, token files, env keys; and
when claudy imports it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hal_common.credentials import Credential
from hal_common.errors import UsageError
from hal_common.protocol import AuthStatus
from hal_testing.claude_files import future_ms, oauth_doc
from host_shim.adapters import auth


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
    assert any(
        "ANTHROPIC_API_KEY is set but not imported" in n and "--from-env" in n for n in found.notes
    )
    opted = auth.find(env, from_env=True)
    assert opted.credential is not None and opted.credential.kind == "api-key"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("sk-ant-oat01-abc\n", "token"),
        ("  sk-ant-api03-abc", "api-key"),
        (oauth_doc("sk-ant-oat01-y", 5), "oauth"),
    ],
)
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


def test_claudy_imports_only_what_is_newer() -> None:
    old = Credential("oauth", "h", oauth_doc("a", future_ms(1)))
    new = Credential("oauth", "h", oauth_doc("b", future_ms(9)))
    assert auth.should_import(old, AuthStatus(present=False))
    assert not auth.should_import(old, AuthStatus(present=True, fingerprint=old.fingerprint()))
    # rotated inside (the parent's expires later): the host's older copy must not win
    stored = AuthStatus(present=True, fingerprint="x", expires_at=time.time() + 5 * 3600)
    assert not auth.should_import(old, stored)
    assert auth.should_import(new, stored)  # the user logged in again on the host
