"""Finding the host's Claude credential (sent to the parent by `ParentClient.import_credential`).

Sources, in order: a file the user names (`--token-file`); the Linux credentials file
(`$CLAUDE_CONFIG_DIR` or `~/.claude`, `.credentials.json`); the macOS Keychain item
"Claude Code-credentials" through `security`; `ANTHROPIC_API_KEY`, only when the user
opts in (`--from-env`). The host's files are only read.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hal_common import credentials
from hal_common.credentials import Credential, CredentialError
from hal_common.errors import UsageError
from hal_common.protocol import AuthStatus

ENV_KEY = "ANTHROPIC_API_KEY"
ENV_REFUSED = (
    f"{ENV_KEY} is set but not imported: a key in the environment of a container shows in "
    "`docker inspect`, in /proc and in every child process. `claudy auth import --from-env` "
    "copies it into the parent's 0600 credentials file instead (or use --token-file F)"
)

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def user_home(env: Mapping[str, str]) -> Path:
    """The invoking user's home: under sudo, the home of the user who ran sudo."""
    sudo_user = env.get("SUDO_USER")
    if os.getuid() == 0 and sudo_user and sudo_user != "root":
        try:
            return Path(pwd.getpwnam(sudo_user).pw_dir)
        except KeyError:
            pass
    return Path(env.get("HOME") or os.path.expanduser("~"))


def claude_dir(env: Mapping[str, str]) -> Path:
    """The host's Claude config directory (`$CLAUDE_CONFIG_DIR`, default `~/.claude`)."""
    override = env.get("CLAUDE_CONFIG_DIR")
    return Path(override) if override else user_home(env) / ".claude"


def state_file(env: Mapping[str, str]) -> Path:
    """The host's `.claude.json` (inside `$CLAUDE_CONFIG_DIR` when that is set)."""
    override = env.get("CLAUDE_CONFIG_DIR")
    return Path(override) / ".claude.json" if override else user_home(env) / ".claude.json"


@dataclass
class Found:
    credential: Credential | None
    notes: list[str] = field(default_factory=list)  # what was tried and refused, for the user


def find(
    env: Mapping[str, str],
    token_file: str | None = None,
    from_env: bool = False,
    run: Runner = _run,
) -> Found:
    if token_file is not None:
        return Found(_from_file(Path(token_file)))
    notes: list[str] = []
    linux = claude_dir(env) / ".credentials.json"
    try:
        text = linux.read_text()
    except FileNotFoundError:
        pass
    except OSError as e:
        notes.append(f"{linux}: {e.strerror}")
    else:
        shown = _tilde(linux, env)
        try:
            credentials.parse_oauth(text, shown)
            return Found(Credential("oauth", shown, text.strip()))
        except CredentialError as e:
            notes.append(str(e))
    security = shutil.which("security", path=env.get("PATH"))
    if security is not None:
        found = _keychain(security, run, notes)
        if found is not None:
            return Found(found, notes)
    key = env.get(ENV_KEY)
    if key:
        if from_env:
            cred = Credential("api-key", f"${ENV_KEY}", key.strip())
            credentials.check(cred)
            return Found(cred, notes)
        notes.append(ENV_REFUSED)
    return Found(None, notes)


def _tilde(path: Path, env: Mapping[str, str]) -> str:
    home = str(user_home(env))
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + "/") else text


def _from_file(path: Path) -> Credential:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such file",
            hint="name the file `claude setup-token` printed into, or an API key file",
        ) from None
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None
    try:
        return credentials.classify_text(text, str(path))
    except CredentialError as e:
        raise UsageError(str(e)) from None


def _keychain(security: str, run: Runner, notes: list[str]) -> Credential | None:
    argv = [security, "find-generic-password", "-s", credentials.KEYCHAIN_SERVICE, "-w"]
    try:
        done = run(argv)
    except (OSError, subprocess.SubprocessError) as e:
        notes.append(f"macOS Keychain: {e}")
        return None
    if done.returncode != 0:
        if done.returncode != 44:  # 44: the item is not there
            notes.append(f"macOS Keychain: security exited {done.returncode}")
        return None
    source = f'macOS Keychain "{credentials.KEYCHAIN_SERVICE}"'
    try:
        credentials.parse_oauth(done.stdout.strip(), source)
    except CredentialError as e:
        notes.append(str(e))
        return None
    return Credential("oauth", source, done.stdout.strip())


def should_import(cred: Credential, stored: AuthStatus) -> bool:
    """On `claudy`: import when the parent has nothing, or the host has a newer credential.

    An OAuth refresh inside rotates the refresh token, which leaves the host's copy older
    than the parent's: importing it then would replace a good credential with a dead one.
    """
    if not stored.present:
        return True
    if stored.fingerprint == cred.fingerprint():
        return False
    mine, theirs = cred.expires_at(), stored.expires_at
    if mine is None or theirs is None:
        return stored.kind != cred.kind
    return mine > theirs
