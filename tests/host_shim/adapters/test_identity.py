"""The host's git identity and SSH agent, read with the real git and a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from hal_common.config import parse_config
from hal_common.identity import GitIdentity, IdentityError
from host_shim.adapters import identity


def _env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1"}


def test_the_identity_is_the_users_git_config_never_a_repositorys(tmp_path: Path) -> None:
    env = _env(tmp_path)
    found = identity.git_identity(env)
    assert found.identity == GitIdentity() and "no user.name or user.email" in found.note
    (tmp_path / ".gitconfig").write_text("[user]\n\tname = Ada L\n\temail = ada@x.test\n")
    assert identity.git_identity(env).identity == GitIdentity("Ada L", "ada@x.test")
    # GIT_CONFIG_GLOBAL (what the e2e test sets) is the user's global config too
    other = tmp_path / "other.gitconfig"
    other.write_text("[user]\n\temail = other@x.test\n")
    assert identity.git_identity({**env, "GIT_CONFIG_GLOBAL": str(other)}).identity == (
        GitIdentity("", "other@x.test")
    )
    # a repository claudy runs in (GIT_DIR) does not count
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "repo@x.test"], check=True)
    got = identity.git_identity({**env, "GIT_DIR": str(repo / ".git")}).identity
    assert got == GitIdentity("Ada L", "ada@x.test")


def test_no_git_is_said_and_a_bad_value_is_left_out(tmp_path: Path) -> None:
    found = identity.git_identity({"HOME": str(tmp_path), "PATH": str(tmp_path)})
    assert found.identity is None and "git is not installed" in found.note
    long = "x" * 300
    (tmp_path / ".gitconfig").write_text(f"[user]\n\tname = {long}\n\temail = e@x.test\n")
    found = identity.git_identity(_env(tmp_path))
    assert found.identity == GitIdentity("", "e@x.test") and "longer than 256" in found.note


def test_the_agent_socket_is_wanted_only_for_an_opt_in_and_a_real_socket(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        on = parse_config('[identity]\nssh_agent = ["~/src"]\n')
        env = {"SSH_AUTH_SOCK": str(path)}
        assert identity.wanted_ssh_agent(on, env) == str(path)
        assert identity.wanted_ssh_agent(parse_config(""), env) == ""  # nobody opted in
        assert identity.wanted_ssh_agent(on, {}) == ""
        (tmp_path / "file").write_text("")
        assert identity.wanted_ssh_agent(on, {"SSH_AUTH_SOCK": str(tmp_path / "file")}) == ""
        assert identity.wanted_ssh_agent(on, {"SSH_AUTH_SOCK": "relative.sock"}) == ""
    finally:
        server.close()


def test_gh_missing_says_how_to_pipe_a_token(tmp_path: Path) -> None:
    with pytest.raises(IdentityError) as e:
        identity.github_token_from_gh({"PATH": str(tmp_path)})
    assert "claudy identity github-token" in (e.value.hint or "")
