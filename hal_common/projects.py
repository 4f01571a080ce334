"""Which directories may become projects: the one path policy, for claudy and the parent.

A project is a directory under a configured root, not a root itself. It is never, never lies
inside, and never contains a sensitive directory: the host user's secrets (`~/.ssh`,
`~/.gnupg`, `~/.aws`, `~/.config`, `~/.docker`, `~/.kube`, `~/.claude`, …), hal-9000's
config directory, the parent's own directories (`/run/hal9000`, its volumes), or a system
directory. Symlinks and `..` are resolved first: a link into `~/.ssh` *is* `~/.ssh`.

`check_project` decides on a resolved path and touches nothing; `resolve_project` resolves
a path as typed, then asks it. The parent calls it from one place (`sessions.project_path`)
that every way of naming a project goes through; claudy calls it as a friendly pre-check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hal_common.errors import UsageError
from hal_common.layout import ParentLayout

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

# System trees: nothing under them is a project (kernel and device files, the system's
# configuration, runtime sockets such as /run/hal9000 and /var/run/docker.sock, programs,
# package and engine state, logs).
SYSTEM_TREES = (
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/run",
    "/boot",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr",
    "/var/run",
    "/var/lib",
    "/var/log",
    "/snap",
    "/System",
    "/Library",
    "/private/etc",
    "/private/var",
)

# The parent's own directories (its volumes and mounts): a project there would be the
# parent's config, its Claude home, its services' data and tokens, its inner engine.
_IMAGE = ParentLayout()
PARENT_TREES = (
    str(_IMAGE.config_dir.parent),  # /config: hal-9000's config and the shared Claude home
    str(_IMAGE.data_dir),  # /data: services' data, the MCP token, workers' state, the logs
    str(_IMAGE.inner_data_root),  # /var/lib/docker
    str(_IMAGE.run_dir),  # /run/hal9000: the inner engine's socket, tmux, the control socket
)

# Under the host user's home: where keys, tokens and credentials live.
HOME_SECRETS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config",
    ".docker",
    ".kube",
    ".claude",
    ".password-store",
    ".local/share/keyrings",
)

ROOTS_HINT = (
    "projects live under [parent].roots in the config; after changing roots run "
    "`claudy down` so the parent remounts them"
)


@dataclass(frozen=True)
class PathPolicy:
    """What the decision needs: the roots (resolved), the host user's home and hal-9000's
    config directory on the host (empty: unknown, and then nothing is a project)."""

    roots: tuple[str, ...]
    home: str
    config_dir: str = ""
    # the parent's repositories that travelled by git (`/data/repos`): what lies inside it
    # (never itself) is a project, the one exception to the parent's own trees; "": none
    repos: str = ""

    @classmethod
    def of_parent(cls, layout: ParentLayout) -> PathPolicy:
        """The parent's policy: the roots it was started with (mounted at the same path),
        the host user's home and config directory, as claudy passed them; and the
        repositories that came by git."""
        return cls(layout.roots, layout.host_home, layout.host_config_dir, str(layout.repos_dir))

    def sensitive(self) -> tuple[tuple[str, str], ...]:
        """(directory, why) for each sensitive directory of the host user."""
        found = [
            (os.path.join(self.home, s), f"~/{s} holds the host user's keys and credentials")
            for s in HOME_SECRETS
        ]
        if self.config_dir:
            found.append((self.config_dir, "it is hal-9000's config directory"))
        return tuple(found)


def _under(path: str, top: str) -> bool:
    """`path` is `top` or lies inside it (both absolute and normalised)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _overlap(a: str, b: str) -> bool:
    return _under(a, b) or _under(b, a)


def expand_user(directory: str, home: str) -> str:
    """`~` and `~/…` expanded with `home` (the host user's, not this process's)."""
    if home and (directory == "~" or directory.startswith("~/")):
        return home + directory[1:]
    return directory


def expand_roots(roots: tuple[str, ...], home: str) -> tuple[str, ...]:
    """Roots with `~` expanded to `home` and symlinks resolved."""
    out = [os.path.realpath(expand_user(r, home)) for r in roots]
    return tuple(dict.fromkeys(out))


def check_roots(roots: tuple[str, ...]) -> None:
    for r in roots:
        if r in SYSTEM_DIRS or not r.startswith("/"):
            raise UsageError(
                f"root {r!r} is a system directory and cannot be shared with workers",
                hint="set [parent].roots in the config to directories that hold your projects",
            )
        if any(_overlap(r, t) for t in PARENT_TREES):
            raise UsageError(
                f"root {r!r} overlaps the parent's own directories ({', '.join(PARENT_TREES)})",
                hint="set [parent].roots in the config to directories elsewhere",
            )


def check_project(real: str, policy: PathPolicy) -> str:
    """`real` (absolute, symlinks resolved) if it may be a project; else a UsageError that
    names the rule it breaks and what to do. Pure: decides on the path alone."""
    if not os.path.isabs(real) or os.path.normpath(real) != real or real.startswith("//"):
        raise UsageError(f"{real}: not an absolute, resolved path", hint="give a project directory")
    if policy.repos and real != policy.repos and _under(real, policy.repos):
        return real  # a repository that came by git, or one of its tasks' worktrees
    if real in SYSTEM_DIRS or any(_under(real, t) for t in SYSTEM_TREES):
        raise UsageError(
            f"{real} is a system directory, not a project",
            hint="run claudy in a project directory under a configured root",
        )
    for tree in PARENT_TREES:
        if _overlap(real, tree):
            raise UsageError(
                f"{real} overlaps {tree}, one of the parent's own directories, not a project",
                hint="run claudy in a project directory under a configured root",
            )
    if real in policy.roots:
        raise UsageError(
            f"{real} is a root itself, not a project inside it",
            hint=f"run claudy in a project directory under {real}",
        )
    if not policy.home:
        raise UsageError(
            f"{real} is refused: the parent does not know the host user's home "
            "(it was started by an older claudy)",
            hint="`claudy down && claudy` restarts it with the current settings",
        )
    for secret, why in policy.sensitive():
        if _under(real, secret):
            raise UsageError(
                f"{real} is a sensitive directory, not a project: {why}",
                hint="run claudy in a project directory; workers never see these",
            )
        if _under(secret, real):
            raise UsageError(
                f"{real} contains a sensitive directory ({secret}: {why}), so it cannot be "
                "a project",
                hint="run claudy in a project directory that holds only the project",
            )
    if not policy.roots:
        raise UsageError(f"{real} is refused: no roots are configured", hint=ROOTS_HINT)
    if not any(_under(real, r) for r in policy.roots):
        raise UsageError(
            f"{real} is not under a configured root ({', '.join(policy.roots)})",
            hint="move the project, or add its parent directory to [parent].roots "
            "in the config and run `claudy down` so the parent remounts",
        )
    return real


def resolve_project(directory: str, policy: PathPolicy) -> str:
    """The project's real path, or a UsageError that says which rule `directory` breaks and
    what to do. `~` is the host user's home; symlinks and `..` are resolved before deciding."""
    try:
        real = os.path.realpath(expand_user(directory, policy.home))
    except (OSError, ValueError) as e:  # a link this process may not read; a NUL byte
        raise UsageError(
            f"{directory}: cannot be resolved ({e})", hint="give a project directory"
        ) from None
    check_project(real, policy)
    p = Path(real)
    if not p.exists():
        raise UsageError(f"{directory}: no such directory", hint="create it or pick another")
    if not p.is_dir():
        raise UsageError(f"{directory}: not a directory", hint="give the project's directory")
    return real
