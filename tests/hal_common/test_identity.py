"""The pure identity rules: the git values, the gitconfig a worker reads, the opt-ins."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from hal_common import identity
from hal_common.config import parse_config
from hal_common.errors import ConfigError
from hal_common.identity import GitIdentity, Grants, IdentityError


def test_the_wire_round_trips_and_refuses_what_is_no_identity() -> None:
    ident = GitIdentity("Ada Lovelace", "ada@example.com")
    assert identity.from_wire(ident.wire()) == ident
    for bad in (b"[]", b"{}", b'{"git": 1}', b'{"git": {"name": 3}}', b"x" * 5000, b"{"):
        with pytest.raises(IdentityError):
            identity.from_wire(bad)
    with pytest.raises(IdentityError, match="control character"):
        identity.from_wire(GitIdentity("a\n[core]\nfsmonitor = x", "e").wire())
    with pytest.raises(IdentityError, match="longer than 256"):
        identity.from_wire(GitIdentity("a" * 257, "e").wire())


def test_the_gitconfig_holds_the_name_and_email_and_nothing_else(tmp_path: Path) -> None:
    """Read back by the real git: quotes and backslashes survive as written."""
    tricky = GitIdentity('Ada "the first" \\ Lovelace', "ada@example.com")
    text = identity.gitconfig_text(tricky, github=False)
    assert "credential" not in text
    cfg = tmp_path / "gitconfig"
    cfg.write_text(text)

    def git(*args: str) -> str:
        env = {"GIT_CONFIG_SYSTEM": str(cfg), "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/"}
        done = subprocess.run(["git", *args], env=env, capture_output=True, text=True)
        return done.stdout.strip()

    assert git("config", "user.name") == 'Ada "the first" \\ Lovelace'
    assert git("config", "user.email") == "ada@example.com"
    # the helper only for the opted-in, and only for github.com
    cfg.write_text(identity.gitconfig_text(tricky, github=True))
    helper = "/usr/local/bin/hal-worker git-credential"
    assert git("config", "--get-urlmatch", "credential.helper", "https://github.com/a/b") == helper
    assert git("config", "--get-urlmatch", "credential.helper", "https://evil.example/") == ""
    assert git("config", "--get-urlmatch", "credential.helper", "http://github.com/") == ""
    # no identity: no [user] section at all
    assert "[user]" not in identity.gitconfig_text(GitIdentity(), github=False)


def test_a_token_is_one_printable_word() -> None:
    assert identity.check_token("  ghp_abc123\n") == "ghp_abc123"
    for bad in ("", "  ", "two words", "tab\there", "é" * 10, "x" * 1025):
        with pytest.raises(IdentityError) as e:
            identity.check_token(bad)
        assert bad.strip() == "" or bad not in e.value.message  # never echoed


def test_a_project_is_granted_by_its_own_entry_or_one_above_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    app = home / "src" / "app"
    (app / ".hal9000" / "tasks" / "t1").mkdir(parents=True)
    (home / "src" / "application").mkdir()
    (home / "link").symlink_to(home / "src")
    h = str(home)
    assert identity.opted_in(str(app), ["~/src/app"], h)
    assert identity.opted_in(str(app / ".hal9000" / "tasks" / "t1"), ["~/src/app"], h)
    assert not identity.opted_in(str(home / "src" / "application"), ["~/src/app"], h)
    assert identity.opted_in(str(app), ["~/link/app"], h)  # resolved like the project
    assert identity.opted_in(str(app), [str(home / "src")], h)
    assert not identity.opted_in(str(app), ["/"], h)  # never everything by accident
    assert not identity.opted_in(str(app), ["~/src/app"], "")  # no home known: no ~
    g = identity.grants(str(app), ["~/src/app"], [], h)
    assert g == Grants(ssh_agent=True, github_token=False) and g.label() == "ssh-agent"
    assert Grants(True, True).label() == "ssh-agent,github-token" and Grants().label() == ""


def test_the_config_section_takes_directories_only() -> None:
    cfg = parse_config('[identity]\nssh_agent = ["~/src/app", "/srv/x"]\ngithub_token = []\n')
    assert cfg.identity.ssh_agent == ("~/src/app", "/srv/x")
    with pytest.raises(ConfigError) as e:
        parse_config('[identity]\ngithub_token = ["src/app"]\n')
    assert "config.toml:2:16: [identity].github_token has 'src/app'" in str(e.value)
    with pytest.raises(ConfigError, match="must be an array of strings"):
        parse_config("[identity]\nssh_agent = true\n")


def test_the_gitconfig_trusts_its_project_for_a_worker_of_another_uid() -> None:
    """A worker runs as 65532 over a root user's root-owned project: git refuses a repository
    of another owner ("dubious ownership") unless protected config names it safe. Read back
    by the real git, as that uid (the test runs as root, as CI does)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run git as another uid than the repository's owner")
    top = Path(tempfile.mkdtemp(prefix="hal-safe-"))  # not pytest's 0700 tmp: 65532 reads it
    try:
        top.chmod(0o755)
        repo = top / "my repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        cfg = top / "gitconfig"

        def status(text: str) -> subprocess.CompletedProcess[str]:
            cfg.write_text(text)
            cfg.chmod(0o644)
            env = {"GIT_CONFIG_SYSTEM": str(cfg), "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/"}
            return subprocess.run(
                ["git", "-C", str(repo), "status", "--short"],
                env=env,
                capture_output=True,
                text=True,
                user=65532,
                group=65532,
            )

        refused = status(identity.gitconfig_text(GitIdentity(), github=False))
        assert refused.returncode != 0 and "dubious ownership" in refused.stderr
        trusted = status(identity.gitconfig_text(GitIdentity(), github=False, safe=(str(repo),)))
        assert trusted.returncode == 0, trusted.stderr
    finally:
        shutil.rmtree(top)
