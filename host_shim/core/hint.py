"""The quick entry's hint (pure): what `claudy DIR` may take from the last full run.

The full path (commands/launch.py `remember`) writes a hint once it has seen the parent
ready, not older than this checkout, holding the host's worker image; the quick entry
(commands/quick.py) uses it only while the environment it was derived from and the stamps of
every file it was derived from (the config file, the sources) are unchanged, and while the
host engine still says the same parent container runs the same image and the worker image is
the same. The config is never read on the quick path: no TOML, no duplicated config logic.

Standard library only, and cheap to import (claudy's start-up): no dataclasses here either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

FALLBACK = 97  # the in-parent attach script's "cannot attach here": the full path runs
HINT_VERSION = 1

# claudy's own words: anything else as the only argument is a directory (cli._Group). A test
# holds these against the click group, so that the quick entry never takes a command for a
# directory.
FORWARDED = ("ls", "spawn", "attach", "start", "restart", "rm", "logs", "stats", "shell",
             "keys", "gc", "version", "egress")  # fmt: skip
TOP_OPTIONS = ("--help", "-h", "--version")
COMMANDS = ("auth", "build", "config", "doctor", "down", "forward", "open", "send", "status",
            "stop", "sync")  # fmt: skip

# The variables the config, the layout, the path policy and the engine come from.
ENV_PREFIXES = ("HAL9000_", "DOCKER_")
ENV_NAMES = ("HOME", "XDG_CONFIG_HOME", "SUDO_UID", "SUDO_GID")

# What a name may hold to go into the engine's URL paths as it is (else: the full path).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@")

Stamp = tuple[int, ...] | None  # (inode, size, mtime ns, ctime ns); None: absent


def quick_candidate(args: list[str]) -> bool:
    """`claudy` or `claudy DIR`: the only command lines the quick entry tries."""
    if not args:
        return True
    if len(args) != 1:
        return False
    word = args[0]
    return bool(word) and word[0] != "-" and word not in (*FORWARDED, *COMMANDS)


def env_subset(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a hint is derived from (it is used only while this is the same)."""
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def hint_key(env: Mapping[str, str]) -> str:
    """The hint's file name for this environment (one per config and engine)."""
    digest = hashlib.sha256(json.dumps(env_subset(env), sort_keys=True).encode())
    return f"claudy-{digest.hexdigest()[:16]}.json"


def safe_name(name: str) -> bool:
    return bool(name) and not name.startswith("-") and set(name) <= _NAME_CHARS


def engine_socket(env: Mapping[str, str]) -> str | None:
    """The host engine's unix socket, as docker-py finds it (DOCKER_HOST, else the default);
    None for anything else (tcp, ssh, TLS): the full path handles those."""
    host = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://") or env.get("DOCKER_TLS_VERIFY"):
        return None
    return host[len("unix://") :] or None


class Hint:
    """One hint (a plain class: `dataclasses` costs claudy's start-up a few ms)."""

    __slots__ = ("argv", "env", "parent", "parent_id", "parent_image", "parent_image_id",
                 "roots", "stamps", "worker_image", "worker_image_id")  # fmt: skip

    def __init__(
        self,
        *,
        env: dict[str, str],
        stamps: tuple[tuple[str, Stamp], ...],
        parent: str,
        parent_id: str,
        parent_image: str,
        parent_image_id: str,
        worker_image: str,
        worker_image_id: str,
        roots: tuple[str, ...],
        argv: tuple[str, ...],
    ) -> None:
        self.env = env
        self.stamps = stamps
        self.parent = parent  # the parent container's name, and its id then
        self.parent_id = parent_id
        self.parent_image = parent_image  # [parent].image, and the id the parent ran (not older)
        self.parent_image_id = parent_image_id
        self.worker_image = worker_image  # [worker].image, and its id on both sides then
        self.worker_image_id = worker_image_id
        self.roots = roots  # [parent].roots as written (expanded again on use)
        self.argv = argv  # the one exec but the docker CLI and the last arguments

    def _fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hint) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> str:
        d = self._fields()
        d["stamps"] = [[p, list(s) if s is not None else None] for p, s in self.stamps]
        return json.dumps({"v": HINT_VERSION, **d}, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Hint | None:
        """The hint in `text`, or None when it is not one (of this version)."""
        try:
            d = json.loads(text)
            if d["v"] != HINT_VERSION:
                return None
            h = cls(
                env={str(k): str(v) for k, v in d["env"].items()},
                stamps=tuple(
                    (str(p), tuple(int(x) for x in s) if s is not None else None)
                    for p, s in d["stamps"]
                ),
                parent=str(d["parent"]),
                parent_id=str(d["parent_id"]),
                parent_image=str(d["parent_image"]),
                parent_image_id=str(d["parent_image_id"]),
                worker_image=str(d["worker_image"]),
                worker_image_id=str(d["worker_image_id"]),
                roots=tuple(str(r) for r in d["roots"]),
                argv=tuple(str(a) for a in d["argv"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        names = (h.parent, h.parent_id, h.parent_image, h.parent_image_id, h.worker_image)
        return h if all(safe_name(n) for n in names) and h.argv else None


def still_holds(h: Hint, parent: Mapping[str, Any] | None, parent_tag: Mapping[str, Any] | None,
                worker_tag: Mapping[str, Any] | None) -> bool:  # fmt: skip
    """What the host engine says now (inspect of the parent container, of the parent image
    tag, of the worker image tag) is what it said when the hint was written: the same parent
    runs the same image, which is still its tag's (not older), and the worker image is the
    one the parent holds."""
    if parent is None or parent_tag is None or worker_tag is None:
        return False
    state = parent.get("State")
    return (
        isinstance(state, dict)
        and state.get("Running") is True
        and parent.get("Id") == h.parent_id
        and parent.get("Image") == h.parent_image_id
        and parent_tag.get("Id") == h.parent_image_id
        and worker_tag.get("Id") == h.worker_image_id
    )
