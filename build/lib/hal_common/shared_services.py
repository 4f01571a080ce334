"""The shared services as typed specs (pure): the keys a `[services.NAME]` table takes and
their checks, the built-in services, and the user's tables merged over them into one
`ServiceSpec` each.

Shared by claudy (which builds and loads the services image when a service uses it) and
hal-agent (which runs them). Reading a table, with file, line and column for each problem,
is the config pipeline's (`config_layers.services_layer`, at load); this module checks and
merges values it has typed. What the parent makes of a spec (container arguments, health,
MCP registration) is `parent_agent.core.services`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

SERVICES_IMAGE = "hal9000/services:latest"
MCP_PATH = "/mcp"
BRIDGE = ("hal-service", "bridge", "--")  # the services image's stdio-to-HTTP MCP bridge
CHROMA = "chromadb"
CHROMA_MCP = "chroma-mcp"


@dataclass(frozen=True)
class ServiceSpec:
    """One service as it should run: a built-in's keys with the user's table over them.

    `stdio` is already resolved: a stdio server without a `command` runs behind the bridge
    (`command` is the bridge's argv, `image` defaults to the services image, `mcp` is on).
    """

    name: str
    enabled: bool = True
    image: str = ""
    command: tuple[str, ...] = ()  # argv; its first word replaces the image's entrypoint
    env: tuple[tuple[str, str], ...] = ()
    network: str = "host"
    port: int | None = None  # where it listens on 127.0.0.1: health, and MCP
    mcp: bool = False  # serves MCP over streamable HTTP at mcp_path
    mcp_path: str = MCP_PATH
    stdio: tuple[str, ...] = ()  # a stdio MCP server's argv, run behind the bridge
    data: str = ""  # a directory under the services' data, mounted at /data
    token: bool = False  # ChromaDB's token, mounted read-only

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.env)


# The keys a table takes and their types (as in config_schema: tuple is an array of strings,
# dict a table of strings). `port` is an integer that may be absent.
SERVICE_KEYS: dict[str, type[Any]] = {
    "enabled": bool,
    "image": str,
    "command": tuple,
    "env": dict,
    "network": str,
    "port": int,
    "mcp": bool,
    "mcp_path": str,
    "stdio": tuple,
    "data": str,
    "token": bool,
}

_DATA_DIR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _not_empty(v: str | tuple[str, ...]) -> str | None:
    return "must not be empty" if not v or (isinstance(v, str) and not v.strip()) else None


def _port(v: int) -> str | None:
    return None if 0 < v < 65536 else f"is {v}; expected a port number, 1 to 65535"


def _url_path(v: str) -> str | None:
    if v.startswith("/") and not any(c.isspace() for c in v):
        return None
    return f"is {v!r}; expected a URL path such as '/mcp'"


def _data_dir(v: str) -> str | None:
    if _DATA_DIR_RE.match(v) and v not in (".", ".."):
        return None
    return f"is {v!r}; expected a directory name (letters, digits, '_', '.', '-'), no '/'"


def _env_table(v: dict[str, str]) -> str | None:
    bad = [n for n in v if not _ENV_NAME_RE.match(n)]
    return f"has {bad[0]!r}, which is not an environment variable name" if bad else None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "image": _not_empty,
    "stdio": _not_empty,
    "network": _not_empty,
    "port": _port,
    "mcp_path": _url_path,
    "data": _data_dir,
    "env": _env_table,
}


def check_value(key: str, value: Any) -> str | None:
    """What is wrong with an already typed value of a table's `key`, as words that follow
    the key's name (as `config_schema.check_value` for the fixed sections)."""
    check = _CHECKS.get(key)
    return check(value) if check else None


# The built-in services' keys, as if written in tables; a user's table of the same name is
# merged over them key by key.
BUILTIN: dict[str, dict[str, Any]] = {
    CHROMA: {"image": SERVICES_IMAGE, "command": ("hal-service", "chroma"), "port": 8000,
             "data": "chromadb", "token": True},
    CHROMA_MCP: {"image": SERVICES_IMAGE, "command": ("hal-service", "chroma-mcp"),
                 "port": 8811, "mcp": True, "token": True},
    "memory-bank": {"image": SERVICES_IMAGE, "command": ("hal-service", "memory-bank"),
                    "port": 8812, "mcp": True, "data": "memory-bank"},
}  # fmt: skip


def _spec(name: str, keys: Mapping[str, Any]) -> ServiceSpec:
    """A spec from typed keys (`env` a mapping or pairs); `stdio` resolved."""
    fields = dict(keys)
    if "env" in fields:
        env = fields["env"]
        fields["env"] = tuple(env.items() if isinstance(env, Mapping) else env)
    if fields.get("stdio") and not fields.get("command"):
        fields.setdefault("image", SERVICES_IMAGE)
        fields["command"] = (*BRIDGE, *fields["stdio"])
        fields["mcp"] = True
    return ServiceSpec(name=name, **fields)


def effective(user: Mapping[str, Mapping[str, Any]]) -> tuple[ServiceSpec, ...]:
    """The built-in services with the user's (typed) tables over them, then the user's own,
    each as a spec; the disabled ones included (`enabled` False)."""
    out = [_spec(name, {**keys, **user.get(name, {})}) for name, keys in BUILTIN.items()]
    out += [_spec(name, keys) for name, keys in user.items() if name not in BUILTIN]
    chroma = next(s for s in out if s.name == CHROMA)
    for i, s in enumerate(out):
        if s.name == CHROMA_MCP and "HAL_CHROMA_PORT" not in s.environment:
            # Chroma's MCP server follows the server's port
            port = str(chroma.port if chroma.port is not None else 8000)
            out[i] = replace(s, env=(*s.env, ("HAL_CHROMA_PORT", port)))
    return tuple(out)


def running(specs: Iterable[ServiceSpec]) -> tuple[ServiceSpec, ...]:
    """The services that should run: the enabled ones."""
    return tuple(s for s in specs if s.enabled)


def find(specs: Iterable[ServiceSpec], name: str) -> ServiceSpec | None:
    return next((s for s in specs if s.name == name), None)


def images(specs: Iterable[ServiceSpec]) -> set[str]:
    """The images the enabled services run."""
    return {s.image for s in running(specs) if s.image}


def problems(spec: ServiceSpec) -> list[str]:
    """What keeps an enabled spec from running, as words after `[services.NAME]`."""
    if not spec.enabled:
        return []
    out = []
    if not spec.image:
        out.append("needs an image (or stdio = [a stdio MCP server])")
    if spec.mcp and spec.port is None:
        out.append("serves MCP, so it needs a port")
    return out
