"""The TOML config: parsed with tomlkit, validated into frozen dataclasses.

Pure: takes text, returns values (or raises ConfigError). Reading the file and watching it
belong to the callers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError

from hal_common import __version__
from hal_common.errors import ConfigError

SECURITY_MODES = ("auto", "caps", "privileged", "sysbox")
NETWORK_MODES = ("host", "bridge", "none")
RESTART_POLICIES = ("no", "on-failure", "unless-stopped", "always")
_MEMORY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_memory(text: str) -> int:
    """'512m' → bytes; '' or '0' → 0 (no limit)."""
    if text.strip() in ("", "0"):
        return 0
    m = _MEMORY_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a memory size: {text!r} (use e.g. '512m', '4g')")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class ParentConfig:
    name: str = "hal9000-parent"
    image: str = f"hal9000/parent:{__version__}"
    base_image: str = "debian:bookworm-slim"
    roots: tuple[str, ...] = ("~",)
    security: str = "auto"
    memory: str = ""
    cpus: float = 0.0


@dataclass(frozen=True)
class WorkerConfig:
    image: str = "hal9000/worker:minimal"
    command: tuple[str, ...] = ("claude",)
    memory: str = "4g"
    cpus: float = 2.0
    pids: int = 1024
    network: str = "host"
    restart: str = "no"
    env: tuple[str, ...] = ()


@dataclass(frozen=True)
class DashboardConfig:
    refresh: float = 2.0


@dataclass(frozen=True)
class KeysConfig:
    prefix: str = "C-b"


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"


@dataclass(frozen=True)
class Config:
    parent: ParentConfig = field(default_factory=ParentConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    log: LogConfig = field(default_factory=LogConfig)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


_SECTIONS: dict[str, type[Any]] = {
    "parent": ParentConfig,
    "worker": WorkerConfig,
    "dashboard": DashboardConfig,
    "keys": KeysConfig,
    "log": LogConfig,
}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", tuple: "a list of strings"}


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{section}].{key}"
    kind = type(default)
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be {_TYPE_NAMES[tuple]}, got {value!r}")
        return tuple(str(v) for v in value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{where} must be {_TYPE_NAMES[kind]}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return kind(value)


def _check(cfg: Config) -> None:
    def bad(where: str, value: object, allowed: tuple[str, ...]) -> ConfigError:
        return ConfigError(f"{where} is {value!r}; expected one of {', '.join(allowed)}")

    if cfg.parent.security not in SECURITY_MODES:
        raise bad("[parent].security", cfg.parent.security, SECURITY_MODES)
    if cfg.worker.network not in NETWORK_MODES:
        raise bad("[worker].network", cfg.worker.network, NETWORK_MODES)
    if cfg.worker.restart not in RESTART_POLICIES:
        raise bad("[worker].restart", cfg.worker.restart, RESTART_POLICIES)
    if not cfg.worker.command:
        raise ConfigError("[worker].command must not be empty")
    if not cfg.parent.roots:
        raise ConfigError("[parent].roots must name at least one directory")
    for where, text in (
        ("[parent].memory", cfg.parent.memory),
        ("[worker].memory", cfg.worker.memory),
    ):
        try:
            parse_memory(text)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
    if cfg.worker.pids < 0 or cfg.worker.cpus < 0 or cfg.parent.cpus < 0:
        raise ConfigError("cpus and pids limits must not be negative")
    if cfg.dashboard.refresh <= 0:
        raise ConfigError("[dashboard].refresh must be a positive number of seconds")


def parse_config(text: str, source: str = "config.toml") -> Config:
    """Parse and validate TOML text; unknown keys become warnings, bad values a ConfigError."""
    try:
        doc = tomlkit.parse(text).unwrap()
    except ParseError as e:
        raise ConfigError(
            f"{source}:{e.line}:{e.col}: {e}", hint="fix the file; the last good config stays"
        ) from None
    warnings: list[str] = []
    built: dict[str, Any] = {}
    for section, value in doc.items():
        if section == "services":
            if not isinstance(value, dict):
                raise ConfigError("[services] must be a table")
            built["services"] = {k: dict(v) for k, v in value.items() if isinstance(v, dict)}
            continue
        cls = _SECTIONS.get(section)
        if cls is None:
            warnings.append(f"{source}: unknown section [{section}] ignored")
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        defaults = cls()
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, v in value.items():
            if key not in known:
                warnings.append(f"{source}: unknown key [{section}].{key} ignored")
                continue
            kwargs[key] = _coerce(section, key, v, getattr(defaults, key))
        built[section] = cls(**kwargs)
    cfg = Config(**built, warnings=tuple(warnings))
    try:
        _check(cfg)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e.message}", hint=e.hint) from None
    return cfg


def load_config(path: Path) -> Config:
    """The config at `path`, or the embedded defaults when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    return parse_config(text, source=str(path))
