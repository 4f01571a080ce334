"""Which Docker engine claudy talks to (pure): `--engine URL`, `--context NAME`, the
environment, `[parent] engine`, else the Docker CLI's current context.

Precedence, as the Docker CLI's own: a flag, then DOCKER_HOST / DOCKER_CONTEXT, then the
config's `[parent] engine`, then the current context (`docker context use`), then the
default socket. The last two are docker-py's `from_env` (7.2 follows contexts), so they are
one choice here: `EngineChoice()` ("the default engine").

An engine is a URL (`unix:///path`, `ssh://[user@]host[:port]`, `tcp://host:port`, TLS from
DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) or a context's name (`~/.docker/contexts`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from hal_common.errors import UsageError

SCHEMES = ("unix", "ssh", "tcp")
ENGINE_FORMS = (
    "unix:///path/to/docker.sock, ssh://user@host[:port], tcp://host:port, "
    "or the name of a Docker context (docker context ls)"
)
# the Docker CLI's own rule for a context's name
_CONTEXT_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$")
_HOST_RE = re.compile(r"^([0-9a-fA-F:.]+|[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?)$")
_USER_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$")

ORIGIN_DEFAULT = "default"


def url_problem(url: str) -> str | None:
    """What is wrong with an engine URL, as words that follow it; None when it is one."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        return f"is not an engine; expected {ENGINE_FORMS}"
    if scheme == "unix":
        return None if rest.startswith("/") and "\0" not in rest else "needs an absolute path"
    u = urlsplit(url)
    if u.path not in ("", "/") or u.query or u.fragment:
        return "takes no path (ssh://user@host[:port], tcp://host:port)"
    try:
        port = u.port
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
    if not u.hostname or not _HOST_RE.match(u.hostname):
        return "names no host"
    if scheme == "ssh":
        if u.username is not None and not _USER_RE.match(u.username):
            return f"has user {u.username!r}, which is not a user name"
        if u.password is not None:
            return "holds a password; use a key (ssh-agent or ~/.ssh/config)"
        return None
    if u.username is not None:
        return "takes no user (tcp://host:port)"
    return None if port else "needs a port (tcp://host:2376)"


def check_engine(value: str) -> str | None:
    """`[parent] engine`: "" (the default), a URL or a context's name."""
    if value == "":
        return None
    if "://" in value:
        return url_problem(value)
    if _CONTEXT_RE.match(value):
        return None
    return f"is {value!r}; expected {ENGINE_FORMS}"


@dataclass(frozen=True)
class EngineChoice:
    """One engine: a URL (`host`) or a context's name (`context`), or neither: docker-py's
    default (the current context, else the default socket). `origin` says where it came from
    (`--engine`, `--context`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `[parent] engine`, default)."""

    host: str = ""
    context: str = ""
    origin: str = ORIGIN_DEFAULT

    @property
    def label(self) -> str:
        """How messages name it."""
        if self.host:
            return self.host
        return f"context {self.context}" if self.context else "the default engine"

    @property
    def ssh(self) -> bool:
        return self.host.startswith("ssh://")

    def cli_args(self) -> list[str]:
        """The docker CLI's global options that pick this engine (nothing for the default:
        the CLI resolves it as docker-py does)."""
        if self.host:
            return ["-H", self.host]
        return ["--context", self.context] if self.context else []

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` where a child process (the docker CLI, claudy's background build) finds this
        engine: DOCKER_HOST or DOCKER_CONTEXT set, the other one removed."""
        out = dict(env)
        if self.host:
            out.pop("DOCKER_CONTEXT", None)
            out["DOCKER_HOST"] = self.host
        elif self.context:
            out.pop("DOCKER_HOST", None)
            out["DOCKER_CONTEXT"] = self.context
        return out


def parse(value: str, origin: str) -> EngineChoice:
    """`value` (a URL or a context's name) → a choice; a UsageError names what is wrong."""
    problem = check_engine(value)
    if problem is not None or not value:
        raise UsageError(
            f"{origin} {problem or 'is empty'}",
            hint=f"give {ENGINE_FORMS}",
        )
    if "://" in value:
        return EngineChoice(host=value, origin=origin)
    return EngineChoice(context=value, origin=origin)


def choose(
    flag_engine: str | None,
    flag_context: str | None,
    env: Mapping[str, str],
    configured: str = "",
) -> EngineChoice:
    """The engine by precedence: flag > DOCKER_HOST/DOCKER_CONTEXT > config > default."""
    if flag_engine and flag_context:
        raise UsageError(
            "--engine and --context both name an engine", hint="give one of them, not both"
        )
    if flag_engine:  # a URL, or a context's name (as `docker -H` takes neither: fine)
        return parse(flag_engine, "--engine")
    if flag_context:
        if "://" in flag_context:
            raise UsageError(
                f"--context {flag_context} is a URL", hint=f"use --engine {flag_context}"
            )
        return parse(flag_context, "--context")
    if env.get("DOCKER_HOST"):
        return parse(env["DOCKER_HOST"], "DOCKER_HOST")
    if env.get("DOCKER_CONTEXT"):
        return parse(env["DOCKER_CONTEXT"], "DOCKER_CONTEXT")
    if configured:
        return parse(configured, "[parent] engine")
    return EngineChoice()
