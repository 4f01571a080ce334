"""Which directories may become projects: resolved, existing, under a configured root."""

from __future__ import annotations

import os
from pathlib import Path

from hal_common.errors import UsageError

# Directories that are never a project, nor the root that holds one.
SYSTEM_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/proc",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var",
        "/tmp",  # noqa: S108 - listed to be refused, not used
        "/opt",
        "/srv",
        "/mnt",
        "/media",
        "/home",
        "/snap",
        "/System",
        "/Library",
        "/Applications",
        "/Users",
        "/private",
        "/Volumes",
    }
)


def expand_roots(roots: tuple[str, ...], home: str) -> tuple[str, ...]:
    """Roots with `~` expanded to `home` and symlinks resolved."""
    out = []
    for r in roots:
        p = home + r[1:] if r == "~" or r.startswith("~/") else r
        out.append(os.path.realpath(p))
    return tuple(dict.fromkeys(out))


def check_roots(roots: tuple[str, ...]) -> None:
    for r in roots:
        if r in SYSTEM_DIRS or not r.startswith("/"):
            raise UsageError(
                f"root {r!r} is a system directory and cannot be shared with workers",
                hint="set [parent].roots in the config to directories that hold your projects",
            )


def resolve_project(directory: str, roots: tuple[str, ...]) -> str:
    """The project's real path, or a UsageError that says what is wrong and what to do."""
    real = os.path.realpath(os.path.expanduser(directory))
    p = Path(real)
    if not p.exists():
        raise UsageError(f"{directory}: no such directory", hint="create it or pick another")
    if not p.is_dir():
        raise UsageError(f"{directory}: not a directory", hint="give the project's directory")
    if real in SYSTEM_DIRS:
        raise UsageError(f"{real} is a system directory, not a project")
    if real in roots:
        raise UsageError(
            f"{real} is a root itself, not a project inside it",
            hint=f"run claudy in a project directory under {real}",
        )
    if not any(real.startswith(r.rstrip("/") + "/") for r in roots):
        raise UsageError(
            f"{real} is not under a configured root ({', '.join(roots)})",
            hint="move the project, or add its parent directory to [parent].roots "
            "in the config and run `claudy down` so the parent remounts",
        )
    return real
