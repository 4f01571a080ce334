"""Claude Code versions: which names are valid, which one a worker gets, where it is mounted.

The binary is not in any image: the parent keeps a read-only, versioned store (its data
volume's `claude/VERSION/claude`, see `ParentLayout.claude_store`) that `claudy claude
update` fills, and each worker mounts one version's binary read-only at `WORKER_BINARY`.

Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hal_common.errors import UsageError

# The version hal-9000 is tested with: what `claudy` installs when the parent has none and
# `[claude] version` pins nothing.
DEFAULT_VERSION = "2.1.332"
BINARY = "claude"  # the file in each version's directory
WORKER_BINARY = "/usr/local/bin/claude"  # where a worker finds it (on PATH), read-only
PACKAGE = "@anthropic-ai/claude-code-{platform}"  # npm's platform package holds the binary
PLATFORMS = {"x86_64": "linux-x64", "amd64": "linux-x64", "aarch64": "linux-arm64",
             "arm64": "linux-arm64"}  # fmt: skip

# MAJOR.MINOR.PATCH with an optional -prerelease of [0-9A-Za-z.-]: never `/`, never `..`,
# never a leading dot or dash (a version is a directory name in the store).
_NUM = r"(0|[1-9]\d{0,5})"
_PRE = r"(-[0-9A-Za-z][0-9A-Za-z-]{0,31}(\.[0-9A-Za-z-]{1,32}){0,4})?"
_VERSION = re.compile(rf"\A{_NUM}\.{_NUM}\.{_NUM}{_PRE}\Z")


def valid(text: str) -> bool:
    return bool(_VERSION.match(text))


def problem(text: str) -> str | None:
    """What is wrong with `text` as a version, as words that follow its name; None: valid."""
    if valid(text):
        return None
    return f"is {text!r}, not a Claude Code version such as {DEFAULT_VERSION!r}"


def check(text: str) -> str:
    """`text` if it is a valid version; else a UsageError (from argv, config or stdin)."""
    if not valid(text):
        raise UsageError(
            f"not a Claude Code version: {text!r}",
            hint=f"a version is MAJOR.MINOR.PATCH, e.g. {DEFAULT_VERSION}",
        )
    return text


def key(version: str) -> tuple[int, int, int, int, str]:
    """Sort key: numeric parts, then a release above its pre-releases."""
    m = _VERSION.match(version)
    if not m:
        return (-1, -1, -1, -1, version)
    pre = (m.group(4) or "")[1:]
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, pre)


def newest(versions: Iterable[str]) -> str | None:
    found = [v for v in versions if valid(v)]
    return max(found, key=key) if found else None


def target(pin: str, installed: Iterable[str]) -> str | None:
    """The version a new spawn or restart gets: the pin (installed or not: the caller says
    it is missing), else the newest installed; None when nothing is installed and nothing is
    pinned."""
    return pin or newest(installed)


def wanted(pin: str, installed: Iterable[str]) -> str:
    """The version `claudy` makes sure the parent has: the pin, else the newest installed,
    else `DEFAULT_VERSION`."""
    return target(pin, installed) or DEFAULT_VERSION


def outdated(running: str, pin: str, installed: Iterable[str]) -> bool:
    """A worker runs another version than a restart would give it (a newer one installed,
    or the pin changed). An unknown version (a worker made before the store) counts too."""
    goal = target(pin, installed)
    return goal is not None and running != goal


def platform(machine: str) -> str:
    """npm's platform name for `platform.machine()`."""
    found = PLATFORMS.get(machine.lower())
    if found is None:
        raise UsageError(
            f"Claude Code has no Linux build for {machine}",
            hint="hal-9000 runs workers on x86_64 and arm64",
        )
    return found


def version_line(output: str) -> str | None:
    """The version in `claude --version`'s output (`2.1.332 (Claude Code)`)."""
    first = output.strip().split(maxsplit=1)
    return first[0] if first and valid(first[0]) else None
