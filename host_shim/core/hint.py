"""The quick entry's hint (pure): what `claudy DIR` may take from the last full run.

The full path (commands/launch.py `remember`) writes a hint once it has seen the parent ready,
not older than this checkout and holding the host's worker image; the quick entry
(commands/quick.py) uses it only while

- the environment it was derived from (HAL9000_*, DOCKER_*, HOME, XDG_CONFIG_HOME, SUDO_*)
  and the stamps of every file it was derived from (the config file; the sources of the
  parent image and of claudy itself) are unchanged;
- each path the path policy resolved (the roots, the home, the config directory) still
  resolves to the same place, so that the policy's decision for a project, which the full
  path made and recorded (`projects`: real path → session), would be the same again;
- the host engine still says the same parent container runs the same image, still its tag's
  (so not older code), and the worker image is the one the parent was seen to hold.

The config is never read on the quick path (no TOML) and no config or policy logic is
repeated: the quick path reuses the full path's decisions while their inputs are the same.

Standard library built-ins only (`marshal`): this module is part of claudy's start-up.
"""

from __future__ import annotations

import marshal

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping

FALLBACK = 97  # the in-parent attach script's "cannot attach here": the full path runs
HINT_VERSION = 3  # 3: the engine it was made on
MAX_PROJECTS = 256  # the decisions a hint keeps (the most recent)

# claudy's own words: anything else as the only argument is a directory (cli._Group). A test
# holds these against the click group, so that the quick entry never takes a command for a
# directory.
FORWARDED = ("ls", "spawn", "attach", "start", "restart", "rm", "logs", "stats", "shell",
             "keys", "gc", "version", "egress", "services", "health", "ports",
             "trust", "diff")  # fmt: skip
TOP_OPTIONS = ("--help", "-h", "--version")
COMMANDS = ("auth", "build", "claude", "completion", "config", "doctor", "down", "identity",
            "open", "pull", "push", "send", "status", "stop", "sync",
            "uninstall")  # fmt: skip

# The variables the config, the layout, the path policy and the engine come from.
ENV_PREFIXES = ("HAL9000_", "DOCKER_")
ENV_NAMES = ("HOME", "XDG_CONFIG_HOME", "SUDO_UID", "SUDO_GID")

Stamp = tuple[int, ...] | None  # (inode, size, mtime ns, ctime ns); None: absent


def quick_candidate(args: list[str]) -> bool:
    """`claudy` or `claudy DIR`: the only command lines the quick entry tries (not `~…`,
    which the policy expands with the host user's home: the full path does that)."""
    if not args:
        return True
    if len(args) != 1:
        return False
    word = args[0]
    return bool(word) and word[0] not in "-~" and word not in (*FORWARDED, *COMMANDS)


def engine_words(args: list[str]) -> tuple[str | None, list[str]] | None:
    """`--engine URL ARGS` / `--engine=URL ARGS` → (URL, ARGS); ARGS alone → (None, ARGS);
    None when an engine option has no value."""
    if args and args[0].startswith("--engine="):
        url = args[0][len("--engine=") :]
        return (url, args[1:]) if url else None
    if args and args[0] == "--engine":
        return (args[1], args[2:]) if len(args) > 1 and args[1] else None
    return None, args


def pinned(env: Mapping[str, str], given: str | None) -> Mapping[str, str]:
    """`env` as the full path pins it to `--engine URL` (hal_common/engines.py `env`):
    DOCKER_HOST the URL, no DOCKER_CONTEXT. The hint is that environment's."""
    if given is None:
        return env
    out = {k: v for k, v in env.items() if k != "DOCKER_CONTEXT"}
    out["DOCKER_HOST"] = given
    return out


def remote_engine(env: Mapping[str, str]) -> str | None:
    """The ssh engine DOCKER_HOST names, which the quick entry asks through the docker CLI;
    None: a local socket, or an engine the full path handles (tcp with its TLS, a context)."""
    url = env.get("DOCKER_HOST") or ""
    return url if url.startswith("ssh://") and safe_name(url[len("ssh://") :]) else None


def completing(env: Mapping[str, str]) -> bool:
    """click's shell completion runs `claudy` with `_CLAUDY_COMPLETE` set: the full path's."""
    return any(k.startswith("_") and k.endswith("_COMPLETE") for k in env)


def env_subset(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a hint is derived from (it is used only while this is the same)."""
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def hint_key(env: Mapping[str, str]) -> str:
    """The hint's file name for this environment (FNV-1a: no hashlib at start-up; the hint
    holds its environment whole, so that a collision is only a miss)."""
    h = 0xCBF29CE484222325
    for k, v in sorted(env_subset(env).items()):
        for ch in f"{k}={v}\0".encode():
            h = ((h ^ ch) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"claudy-{h:016x}.hint"


def engine_socket(env: Mapping[str, str]) -> str | None:
    """The host engine's unix socket, as docker-py finds it (DOCKER_HOST, else the default);
    None for anything else (tcp, ssh, TLS): the full path handles those."""
    host = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://") or env.get("DOCKER_TLS_VERIFY"):
        return None
    if not env.get("DOCKER_HOST") and env.get("DOCKER_CONTEXT", "default") != "default":
        return None  # a context's engine: the full path resolves it
    return host[len("unix://") :] or None


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@")


def safe_name(name: str) -> bool:
    """A name that goes into the engine's URL paths as it is (else: the full path)."""
    return bool(name) and name[0] != "-" and set(name) <= _NAME_CHARS


class Hint:
    """One hint (a plain class: `dataclasses` would cost claudy's start-up a few ms)."""

    __slots__ = (
        "argv",
        "engine",
        "env",
        "parent",
        "parent_id",
        "parent_image",
        "parent_image_id",
        "projects",
        "resolved",
        "stamps",
        "worker_image",
        "worker_image_id",
    )  # fmt: skip

    def __init__(
        self,
        *,
        env: dict[str, str],
        stamps: tuple[tuple[str, Stamp], ...],
        resolved: tuple[tuple[str, str], ...],
        projects: dict[str, str],
        parent: str,
        parent_id: str,
        parent_image: str,
        parent_image_id: str,
        worker_image: str,
        worker_image_id: str,
        argv: tuple[str, ...],
        engine: str = "",
    ) -> None:
        self.env = env
        self.stamps = stamps
        self.resolved = resolved  # (path, its real path) for each path the policy resolved
        self.projects = projects  # a project's real path → its session: the full path's
        self.parent = parent  # the parent container's name, and its id then
        self.parent_id = parent_id
        self.parent_image = parent_image  # [parent].image, and the id the parent ran (not older)
        self.parent_image_id = parent_image_id
        self.worker_image = worker_image  # [worker].image, and its id on both sides then
        self.worker_image_id = worker_image_id
        self.argv = argv  # the one exec, but the docker CLI and the last three arguments
        # the engine's URL the full path used: the quick entry attaches only on that one
        # (a unix socket, or ssh:// through the docker CLI; any other: the full path)
        self.engine = engine

    def fields(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hint) and self.fields() == other.fields()

    __hash__ = None  # type: ignore[assignment]

    def same_but_projects(self, other: Hint) -> bool:
        a, b = self.fields(), other.fields()
        del a["projects"], b["projects"]
        return a == b

    def dumps(self) -> bytes:
        d = self.fields()
        d["stamps"] = tuple((p, tuple(s) if s is not None else None) for p, s in self.stamps)
        return marshal.dumps((HINT_VERSION, d))

    @classmethod
    def loads(cls, data: bytes) -> Hint | None:
        """The hint in `data`, or None when it is not one (of this version)."""
        try:
            # the user's own cache file (0600 in a 0700 directory); marshal builds values,
            # runs nothing, and each value's type is checked below
            version, d = marshal.loads(data)  # noqa: S302
            if version != HINT_VERSION or not isinstance(d, dict):
                return None
            h = cls(**d)
        except (ValueError, EOFError, TypeError):
            return None
        return h if _well_formed(h) else None


def _strs(values: object) -> bool:
    return isinstance(values, tuple | list) and all(isinstance(v, str) for v in values)


def _well_formed(h: Hint) -> bool:
    names = (h.parent, h.parent_id, h.parent_image, h.parent_image_id, h.worker_image,
             h.worker_image_id)  # fmt: skip
    return (
        all(isinstance(n, str) and safe_name(n) for n in names)
        and isinstance(h.env, dict)
        and _strs(tuple(h.env))
        and _strs(tuple(h.env.values()))
        and isinstance(h.projects, dict)
        and _strs(tuple(h.projects))
        and _strs(tuple(h.projects.values()))
        and isinstance(h.stamps, tuple)
        and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in h.stamps)
        and isinstance(h.resolved, tuple)
        and all(_strs(x) and len(x) == 2 for x in h.resolved)
        and _strs(h.argv)
        and len(h.argv) > 0
        and isinstance(h.engine, str)
    )


def same_engine(h: Hint, sock: str) -> bool:
    """The hint was made on the engine at unix socket `sock` (engine_socket's answer now)."""
    return h.engine == f"unix://{sock}"


def same_remote(h: Hint, url: str) -> bool:
    """The hint was made on the ssh engine at `url` (remote_engine's answer now)."""
    return h.engine == url


# The docker CLI's inspect of the parent, its image tag and the worker image tag in one call
# (one ssh connection): `{{json .}}` encodes the engine's structure as the engine does, one
# object a line, in the order asked (containers are looked up before images).
INSPECT_FORMAT = "{{json .}}"


def inspect_argv(h: Hint) -> list[str]:
    """The docker CLI's words (after `docker -H URL`) that inspect what `still_holds` reads."""
    return ["inspect", "--format", INSPECT_FORMAT, "--", h.parent, h.parent_image, h.worker_image]


def inspected_lines(out: bytes) -> tuple[bytes, bytes, bytes] | None:
    """`inspect_argv`'s output → the three inspects, or None when it is not three lines."""
    lines = out.rstrip(b"\n").split(b"\n")
    return (lines[0], lines[1], lines[2]) if len(lines) == 3 else None


def inspected(body: bytes | None, id_: str) -> bool:
    """`body` is the engine's inspect of the object whose id is `id_` (container and image
    inspects both open with their "Id", as the engine's API encodes them)."""
    return body is not None and body.startswith(b'{"Id":"' + id_.encode() + b'"')


def still_holds(h: Hint, parent: bytes | None, parent_tag: bytes | None,
                worker_tag: bytes | None) -> bool:  # fmt: skip
    """The host engine's inspects now (of the parent container, of the parent image tag, of
    the worker image tag; None: not found) say what they said when the hint was written: the
    same parent runs, from the same image, still its tag's (not older), and the worker
    image is the one the parent holds. (Strings in the engine's JSON have their quotes
    escaped, so that a label or a name cannot fake these.)"""
    return (
        inspected(parent, h.parent_id)
        and parent is not None
        and b'"State":{"Status":"running","Running":true,' in parent
        and b'"Image":"' + h.parent_image_id.encode() + b'"' in parent
        and inspected(parent_tag, h.parent_image_id)
        and inspected(worker_tag, h.worker_image_id)
    )


def exec_parts(head: tuple[str, ...] | list[str]) -> tuple[str, str, list[str]] | None:
    """fastpath.quick_attach_head's argv → (detach keys, container, its command), for the quick
    entry's exec over the engine's API; None for any other shape (the docker CLI runs it)."""
    if len(head) < 6 or list(head[:3]) != ["exec", "-it", "--detach-keys"]:
        return None
    keys, container, *cmd = head[3:]
    return (keys, container, cmd) if cmd and not container.startswith("-") else None
