"""The host's side of your identity: `git config user.name/user.email`, the SSH agent's
socket, and a GitHub token from `gh auth token` (or stdin). Only read here; sent to the
parent over an exec's stdin (`ParentClient.import_identity`, `import_github_token`).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hal_common.config import Config
from hal_common.identity import GitIdentity, IdentityError, check_field, check_token

Runner = Callable[[list[str], Mapping[str, str]], "subprocess.CompletedProcess[str]"]
# what git must not take from claudy's environment: another repository's config
_GIT_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CONFIG", "GIT_CONFIG_COUNT")


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env=dict(env),
        cwd="/",  # never a repository's own (local) config: the user's global and system
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class FoundIdentity:
    identity: GitIdentity | None  # None: git is not installed (or could not run)
    note: str = ""  # what went wrong, for `claudy doctor` and the first run


def git_identity(env: Mapping[str, str], run: Runner = _run) -> FoundIdentity:
    """`git config --get user.name` and `user.email` as the user's git sees them (global and
    system config, their includes), from `/` so that no repository's own config counts. Git
    missing: no identity and a note; a value that is not a clean line: left out, a note."""
    git = shutil.which("git", path=env.get("PATH"))
    if git is None:
        return FoundIdentity(None, "git is not installed on this host: workers get no git identity")
    clean = {k: v for k, v in env.items() if k not in _GIT_REPO_VARS}
    values: dict[str, str] = {}
    notes: list[str] = []
    for key in ("user.name", "user.email"):
        try:
            done = run([git, "config", "--get", key], clean)
        except (OSError, subprocess.SubprocessError) as e:
            return FoundIdentity(None, f"git config could not run: {e}")
        if done.returncode != 0:  # 1: not set
            continue
        value = done.stdout.rstrip("\n")
        try:
            values[key] = check_field(key, value)
        except IdentityError as e:
            notes.append(f"{e.message}: not passed to workers")
    found = GitIdentity(values.get("user.name", ""), values.get("user.email", ""))
    if not found and not notes:
        notes.append("git has no user.name or user.email on this host (git config --global)")
    return FoundIdentity(found, "; ".join(notes))


def wanted_ssh_agent(cfg: Config, env: Mapping[str, str]) -> str:
    """The host's SSH agent socket the parent should bind: `$SSH_AUTH_SOCK` (resolved), when
    some project is opted in (`[identity] ssh_agent`) and it is a socket; else ""."""
    sock = env.get("SSH_AUTH_SOCK", "")
    if not cfg.identity.ssh_agent or not sock.startswith("/"):
        return ""
    real = os.path.realpath(sock)
    try:
        return real if stat.S_ISSOCK(os.stat(real).st_mode) else ""
    except OSError:
        return ""


def github_token_from_gh(env: Mapping[str, str], run: Runner = _run) -> str:
    """`gh auth token`'s answer (for github.com), checked; IdentityError saying what to do."""
    gh = shutil.which("gh", path=env.get("PATH"))
    if gh is None:
        raise IdentityError(
            "gh is not installed here, and nothing came on stdin",
            hint="pipe a token in: `printf %s TOKEN | claudy identity github-token` (or "
            "install gh and `gh auth login`)",
        )
    try:
        done = run([gh, "auth", "token", "--hostname", "github.com"], env)
    except (OSError, subprocess.SubprocessError) as e:
        raise IdentityError(f"gh auth token could not run: {e}") from None
    if done.returncode != 0:
        raise IdentityError(
            "gh has no token for github.com",
            hint="`gh auth login`, then `claudy identity github-token`",
        )
    return check_token(done.stdout, "gh auth token's answer")
