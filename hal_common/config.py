"""The TOML config: text (and environment) → validated frozen dataclasses, with origins.

Pure except `load_config` and `read_config`, which read one file. Layers, lowest first:
embedded defaults, the file, then `HAL9000_<SECTION>_<KEY>` environment variables. Errors carry
file, line and column; unknown keys are warnings naming their line. Watching the file belongs
to `parent_agent.config_watch`, editing it to `hal_common.config_edit`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomlkit
from tomlkit.exceptions import ParseError

from hal_common.config_schema import (
    SECTIONS,
    Config,
    DashboardConfig,
    KeysConfig,
    LogConfig,
    ParentConfig,
    WatchConfig,
    WorkerConfig,
    check_value,
    coerce,
    describe,
    find_key,
    key_conflicts,
    parse_memory,
    schema_keys,
)
from hal_common.errors import ConfigError
from hal_common.toml_positions import KeyPos, key_positions, locate

__all__ = [
    "ENV_PREFIX",
    "Config",
    "ConfigError",
    "DashboardConfig",
    "KeysConfig",
    "LogConfig",
    "Origin",
    "ParentConfig",
    "Resolved",
    "Setting",
    "WatchConfig",
    "WorkerConfig",
    "env_name",
    "load_config",
    "parse_config",
    "parse_memory",
    "read_config",
    "resolve",
    "resolve_saved",
    "text_value",
]

ENV_PREFIX = "HAL9000_"
ENV_SOURCE = "environment"
HINT = "the running system keeps its last good config; `config validate` checks a fix"
Origin = Literal["default", "file", "env"]


@dataclass(frozen=True)
class Setting:
    """One effective value: dotted key, value, where it came from (`detail`: line or variable)."""

    key: str
    value: Any
    origin: Origin
    detail: str = ""


@dataclass(frozen=True)
class Resolved:
    config: Config
    settings: tuple[Setting, ...]

    def get(self, key: str) -> Setting | None:
        return next((s for s in self.settings if s.key == key), None)


def env_name(section: str, key: str) -> str:
    """`worker`, `max_rows` → `HAL9000_WORKER_MAX_ROWS`."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def text_value(raw: str, kind: type[Any] | None = None) -> Any:
    """A command-line or environment value: a TOML value when it is one, else the string.

    For a string key (`kind` str) anything that is not a TOML string stays as typed, so
    `name=123` means the name "123".
    """
    try:
        doc = tomlkit.parse(f"v = {raw}").unwrap()
    except ParseError:
        return raw
    if list(doc) != ["v"]:  # e.g. "1\nx = 2" smuggling in a second key
        return raw
    value = doc["v"]
    if kind is str and not isinstance(value, str):
        return raw
    return value


class _Collector:
    """Gathers every problem of one resolve, so a save reports all of them at once."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.positions = key_positions(text) if text else {}
        self.errors: list[tuple[KeyPos | None, str]] = []
        self.warnings: list[str] = []

    def at(self, path: tuple[str, ...], value: bool = True) -> str:
        pos = locate(self.positions, path)
        if pos is None:
            return f"{self.source}:"
        line, col = (pos.value_line, pos.value_column) if value else (pos.line, pos.column)
        return f"{self.source}:{line}:{col}:"

    def error(self, path: tuple[str, ...], message: str, value: bool = True) -> None:
        self.errors.append((locate(self.positions, path), f"{self.at(path, value)} {message}"))

    def warn(self, path: tuple[str, ...], message: str) -> None:
        self.warnings.append(f"{self.at(path, value=False)} {message}")

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        first, _ = self.errors[0]
        raise ConfigError(
            "\n".join(msg for _, msg in self.errors),
            hint=HINT,
            source=self.source,
            line=first.value_line if first else None,
            column=first.value_column if first else None,
        )


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = tomlkit.parse(text).unwrap()
    except ParseError as e:
        line, col = e.line, e.col + 1  # tomlkit counts columns from 0; editors from 1
        what = re.sub(r" at line \d+ col \d+$", "", str(e))
        raise ConfigError(
            f"{source}:{line}:{col}: {what}", hint=HINT, source=source, line=line, column=col
        ) from None
    return doc


def _close(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def _file_layer(
    doc: dict[str, Any], c: _Collector
) -> tuple[dict[tuple[str, str], Any], dict[str, dict[str, Any]]]:
    values: dict[tuple[str, str], Any] = {}
    services: dict[str, dict[str, Any]] = {}
    for section, table in doc.items():
        if section == "services":
            services = _services(table, c)
            continue
        cls = SECTIONS.get(section)
        if cls is None:
            c.warn(
                (section,),
                f"unknown section [{section}] ignored{_close(section, [*SECTIONS, 'services'])}",
            )
            continue
        if not isinstance(table, dict):
            c.error((section,), f"[{section}] must be a table, got {describe(table)}")
            continue
        names = [f.name for f in fields(cls)]
        for key, raw in table.items():
            spec = find_key(section, key)
            if spec is None:
                c.warn((section, key), f"unknown key [{section}].{key} ignored{_close(key, names)}")
                continue
            try:
                value = coerce(raw, spec.kind)
            except TypeError as e:
                c.error((section, key), f"[{section}].{key} must be {e}, got {describe(raw)}")
                continue
            if problem := check_value(section, key, value):
                c.error((section, key), f"[{section}].{key} {problem}")
                continue
            values[(section, key)] = value
    return values, services


def _services(table: Any, c: _Collector) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        c.error(("services",), f"[services] must be a table, got {describe(table)}")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, body in table.items():
        if not isinstance(body, dict):
            c.error(("services", name), f"[services.{name}] must be a table, got {describe(body)}")
            continue
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            c.error(
                ("services", name, "enabled"),
                f"[services.{name}].enabled must be true or false, got {describe(enabled)}",
            )
            continue
        out[name] = dict(body)
    return out


def _env_layer(env: Mapping[str, str], c: _Collector) -> dict[tuple[str, str], tuple[Any, str]]:
    """`HAL9000_<SECTION>_<KEY>` for the fixed sections; other HAL9000_ names are not ours."""
    out: dict[tuple[str, str], tuple[Any, str]] = {}
    for name in sorted(env):
        section = next((s for s in SECTIONS if name.startswith(env_name(s, ""))), None)
        if section is None:
            continue
        key = name[len(env_name(section, "")) :].lower()
        spec = find_key(section, key)
        if spec is None:
            names = [f.name for f in fields(SECTIONS[section])]
            c.warnings.append(
                f"{ENV_SOURCE}: {name} names no key of [{section}], ignored{_close(key, names)}"
            )
            continue
        raw = env[name]
        value = text_value(raw, spec.kind)
        where = f"{ENV_SOURCE}: {name}={raw!r}:"
        try:
            value = coerce(value, spec.kind)
        except TypeError as e:
            c.errors.append((None, f"{where} [{section}].{key} must be {e}, got {describe(value)}"))
            continue
        if problem := check_value(section, key, value):
            c.errors.append((None, f"{where} [{section}].{key} {problem}"))
            continue
        out[(section, key)] = (value, name)
    return out


def resolve(
    text: str | None, source: str = "config.toml", env: Mapping[str, str] | None = None
) -> Resolved:
    """Defaults, then the file's `text` (None: no file), then `env`: the config and origins.

    Raises ConfigError listing every problem (the first one's line and column on the error).
    """
    c = _Collector(source, text)
    doc = _parse_toml(text, source) if text is not None else {}
    values, services = _file_layer(doc, c)
    overrides = _env_layer(env or {}, c)

    settings: list[Setting] = []
    kwargs: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for spec in schema_keys():
        at = (spec.section, spec.name)
        if at in overrides:
            value, var = overrides[at]
            settings.append(Setting(spec.dotted, value, "env", var))
        elif at in values:
            value = values[at]
            pos = locate(c.positions, at)
            settings.append(
                Setting(spec.dotted, value, "file", f"{source}:{pos.line}" if pos else source)
            )
        else:
            value = spec.default
            settings.append(Setting(spec.dotted, value, "default"))
        kwargs[spec.section][spec.name] = value
    for name, body in services.items():
        for key, value in body.items():
            pos = locate(c.positions, ("services", name, key))
            detail = f"{source}:{pos.line}" if pos else source
            settings.append(Setting(f"services.{name}.{key}", value, "file", detail))

    keys = KeysConfig(**kwargs["keys"])
    for pair in key_conflicts(keys):
        # blame the binding that was set (env, then file) rather than a default
        set_ = [k for k in pair if ("keys", k) in overrides] or [
            k for k in pair if ("keys", k) in values
        ]
        culprit = set_[-1] if set_ else pair[1]
        other = pair[0] if culprit == pair[1] else pair[1]
        clash = f"[keys].{culprit} is {getattr(keys, culprit)!r}, which [keys].{other} also uses"
        if ("keys", culprit) in overrides:
            c.errors.append((None, f"{ENV_SOURCE}: {overrides['keys', culprit][1]}: {clash}"))
        else:
            c.error(("keys", culprit), clash)
    c.raise_if_any()
    built = {s: cls(**kwargs[s]) for s, cls in SECTIONS.items()}
    cfg = Config(**built, services=services, warnings=tuple(c.warnings))
    return Resolved(cfg, tuple(settings))


def parse_config(
    text: str, source: str = "config.toml", env: Mapping[str, str] | None = None
) -> Config:
    """Parse and validate TOML text; unknown keys become warnings, bad values a ConfigError."""
    return resolve(text, source, env).config


def resolve_saved(text: str, source: str, env: Mapping[str, str] | None = None) -> Resolved:
    """A saved file's text: as `resolve`, but an empty file is an error, not the defaults
    (an empty config is almost always a save caught half-way)."""
    if not text.strip():
        raise ConfigError(
            f"{source}:1:1: the file is empty; an empty config is almost always a truncated or "
            "half-finished save, so it is not applied",
            hint="put the settings back; a file holding only comments means all defaults",
            source=source,
            line=1,
            column=1,
        )
    return resolve(text, source, env)


def read_config(path: Path, env: Mapping[str, str], *, missing_ok: bool) -> Resolved:
    """The file at `path` resolved with `env` (see `resolve_saved`); a missing file is the
    embedded defaults when `missing_ok`, else an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return resolve(None, str(path), env)
        raise ConfigError(f"{path}: no such file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}", hint=HINT, source=str(path)) from None
    return resolve_saved(text, str(path), env)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """The effective config: `path` (embedded defaults when it does not exist) and `env`
    (default: this process's environment)."""
    return read_config(path, os.environ if env is None else env, missing_ok=True).config
