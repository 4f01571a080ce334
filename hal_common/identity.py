"""Your identity in the workers: the host's git name and email, and two opt-ins per project
(the host's SSH agent, a GitHub token). Pure: values in, values out.

- **git identity**: claudy reads `git config user.name` / `user.email` on the host and sends
  them to the parent (`wire`, over an exec's stdin). The parent writes one small gitconfig
  per worker (`gitconfig_text`), read-only in the worker, that git reads as its *system*
  config (`GIT_CONFIG_SYSTEM`): the name and email only, nothing else of the host's git
  config (no credential helpers, no includes, no aliases). The values come from a file the
  user controls but are treated as untrusted text: bounded, no control characters, quoted.
- **opt-ins** (`[identity] ssh_agent = [...]`, `github_token = [...]`, the user's config
  only, never a project's file): a project gets a grant when its path is one of the listed
  directories or lies under one (`grants`). `~` is the host user's home.
- **GitHub token**: imported over stdin (`claudy identity github-token`), stored in the parent's
  private area; an opted-in worker gets a copy readable by its user only, and a credential
  helper that answers for `https://github.com` only (`hal-worker git-credential`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from hal_common.errors import UsageError
from hal_common.projects import expand_user

MAX_FIELD = 256  # a git name or email longer than this is no name
MAX_WIRE = 4096
MAX_TOKEN = 1024  # GitHub's tokens are 40 to ~100 characters; fine-grained ones ~93
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no space

# Where things are inside a worker (the run directory is read-only: `WORKER_RUN_DIR`).
GITCONFIG = "gitconfig"  # in the worker's run directory: GIT_CONFIG_SYSTEM points at it
GITHUB_TOKEN = "github-token"  # noqa: S105 - a file name: in the run directory of an opted-in worker only, 0400
WORKER_SSH_DIR = "/run/hal-ssh"
WORKER_SSH_SOCK = f"{WORKER_SSH_DIR}/agent.sock"
CREDENTIAL_HELPER = "/usr/local/bin/hal-worker git-credential"
GITHUB_URL = "https://github.com"
# the image's own system config (Debian's git has none; a user image may): still read
IMAGE_GITCONFIG = "/etc/gitconfig"

GRANT_SSH = "ssh-agent"
GRANT_GITHUB = "github-token"


class IdentityError(UsageError):
    """An identity value or document that cannot be used; never holds a secret."""


@dataclass(frozen=True)
class GitIdentity:
    """The host's `user.name` and `user.email` ("" when unset)."""

    name: str = ""
    email: str = ""

    def __bool__(self) -> bool:
        return bool(self.name or self.email)

    def wire(self) -> bytes:
        """The bytes sent to `hal-agent identity import` on stdin."""
        return json.dumps({"git": {"name": self.name, "email": self.email}}).encode()

    def describe(self) -> str:
        if not self:
            return "none"
        return f"{self.name or '(no name)'} <{self.email or 'no email'}>"


def check_field(what: str, value: str) -> str:
    """`value` if it may be a git name or email: at most `MAX_FIELD` characters, no control
    characters (no newline: it could not start another config line), else IdentityError."""
    if len(value) > MAX_FIELD:
        raise IdentityError(f"git {what} is longer than {MAX_FIELD} characters")
    if any(not c.isprintable() for c in value):
        raise IdentityError(f"git {what} holds a control character (a newline?)")
    return value


def from_wire(data: bytes) -> GitIdentity:
    """The identity document claudy sent (checked as untrusted input)."""
    if len(data) > MAX_WIRE:
        raise IdentityError(f"identity document too large ({len(data)} bytes, at most {MAX_WIRE})")
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise IdentityError(f"not an identity document (bad JSON at {e})") from None
    git = doc.get("git") if isinstance(doc, dict) else None
    if not isinstance(git, dict):
        raise IdentityError("not an identity document (no git object)")
    name, email = git.get("name", ""), git.get("email", "")
    if not isinstance(name, str) or not isinstance(email, str):
        raise IdentityError("not an identity document (name and email must be strings)")
    return GitIdentity(check_field("user.name", name), check_field("user.email", email))


def check_token(text: str, source: str = "the token") -> str:
    """A GitHub token, stripped: one word of printable ASCII, at most `MAX_TOKEN` long.
    The message never holds the token."""
    token = text.strip()
    if not token:
        raise IdentityError(f"{source} is empty")
    if len(token) > MAX_TOKEN:
        raise IdentityError(f"{source} is longer than {MAX_TOKEN} characters: not a token")
    if not _TOKEN_RE.match(token):
        raise IdentityError(f"{source} holds spaces or control characters: not a token")
    return token


def _quoted(value: str) -> str:
    """A gitconfig value in double quotes (backslash and quote escaped; the value has no
    control characters: `check_field`)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gitconfig_text(identity: GitIdentity, github: bool, safe: tuple[str, ...] = ()) -> str:
    """The system gitconfig of one worker: the image's own (an include; a missing file is
    ignored by git), the host's name and email, for a worker opted in to the GitHub
    token the credential helper for `https://github.com` only, and `safe`: its project's
    repository paths as `safe.directory` (a worker runs as another uid than the files'
    owner when both are root's, and git refuses a repository of another owner otherwise;
    only protected configuration, as this system file is, can say so)."""
    lines = [
        "# written by hal-9000 for this worker; read-only (your own: ~/.gitconfig)",
        "[include]",
        f"\tpath = {IMAGE_GITCONFIG}",
    ]
    if identity:
        lines.append("[user]")
        if identity.name:
            lines.append(f"\tname = {_quoted(check_field('user.name', identity.name))}")
        if identity.email:
            lines.append(f"\temail = {_quoted(check_field('user.email', identity.email))}")
    if github:
        lines += [f'[credential "{GITHUB_URL}"]', f"\thelper = {CREDENTIAL_HELPER}"]
    if safe:
        lines.append("[safe]")
        lines += [f"\tdirectory = {_quoted(check_field('safe.directory', p))}" for p in safe]
    return "\n".join(lines) + "\n"


# -- opt-ins -----------------------------------------------------------------------------------


def check_dirs(entries: Iterable[str]) -> str | None:
    """What is wrong with an opt-in list (`[identity] ssh_agent`, `github_token`): each entry
    an absolute path or one starting with `~/` (or `~`), without NUL."""
    for e in entries:
        if not e or "\0" in e:
            return f"has {e!r}, which is not a directory"
        if not (e.startswith("/") or e == "~" or e.startswith("~/")):
            return f"has {e!r}; write an absolute path or one starting with ~/"
    return None


def _resolved(entry: str, home: str) -> str:
    return os.path.realpath(expand_user(entry, home)) if home or entry.startswith("/") else ""


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def opted_in(project: str, entries: Iterable[str], home: str) -> bool:
    """Whether `project` (a real path) is one of `entries` or lies under one (symlinks in an
    entry are resolved as the project's were; `~` is `home`, the host user's)."""
    for e in entries:
        top = _resolved(e, home)
        if top and top != "/" and _under(project, top):
            return True
    return False


@dataclass(frozen=True)
class Grants:
    """What one worker is given beyond the git identity."""

    ssh_agent: bool = False
    github_token: bool = False

    def label(self) -> str:
        """The worker label's value: the grants, comma-separated ("" for none)."""
        names = [GRANT_SSH] * self.ssh_agent + [GRANT_GITHUB] * self.github_token
        return ",".join(names)


NO_GRANTS = Grants()  # a project not opted in: the git identity only


def grants(
    project: str, ssh_agent: Iterable[str], github_token: Iterable[str], home: str
) -> Grants:
    """The grants of `project` under the user's `[identity]` lists."""
    return Grants(opted_in(project, ssh_agent, home), opted_in(project, github_token, home))
