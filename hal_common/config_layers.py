"""The config's layers, built from TOML text and environment variables, problems collected.

Pure; `hal_common.config.resolve` puts the layers together. Every problem of one resolve is
gathered (errors with file, line and column; warnings for unknown keys with their line), so a
save reports all of them at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError

from hal_common.config_schema import RETIRED, SECTIONS, check_value, coerce, describe, find_key
from hal_common.egress import first_bad
from hal_common.errors import ConfigError
from hal_common.shared_services import SERVICE_KEYS, ServiceSpec, effective
from hal_common.shared_services import check_value as check_service_value
from hal_common.toml_positions import KeyPos, key_positions, locate

ENV_PREFIX = "HAL9000_"
ENV_SOURCE = "environment"
HINT = "the running system keeps its last good config; `config validate` checks a fix"


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


class Collector:
    """Gathers every problem of one resolve, so a save reports all of them at once."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.text = text or ""
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

    def error_in_array(self, path: tuple[str, ...], item: str, message: str) -> None:
        """An error at `item`'s string inside the array at `path` (else at the array)."""
        pos = locate(self.positions, path)
        if pos is None:
            return self.error(path, message)
        lines = self.text.split("\n")
        start = sum(len(line) + 1 for line in lines[: pos.value_line - 1]) + pos.value_column - 1
        found = min(
            (i for q in ('"', "'") if (i := self.text.find(f"{q}{item}{q}", start)) >= 0),
            default=-1,
        )
        if found < 0:
            return self.error(path, message)
        line = self.text.count("\n", 0, found) + 1
        col = found - (self.text.rfind("\n", 0, found) + 1) + 1
        at = KeyPos(pos.line, pos.column, line, col)
        self.errors.append((at, f"{self.source}:{line}:{col}: {message}"))
        return None

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


def parse_toml(text: str, source: str) -> dict[str, Any]:
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


def file_layer(
    doc: dict[str, Any], c: Collector
) -> tuple[dict[tuple[str, str], Any], tuple[tuple[ServiceSpec, ...], dict[str, dict[str, Any]]]]:
    """The fixed sections' values by (section, key); the services' specs and keys as given."""
    values: dict[tuple[str, str], Any] = {}
    services: tuple[tuple[ServiceSpec, ...], dict[str, dict[str, Any]]] = (effective({}), {})
    for section, table in doc.items():
        if section == "services":
            services = services_layer(table, c)
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
            if (section, key) in RETIRED:
                c.warn((section, key), RETIRED[(section, key)])
                continue
            if spec is None:
                c.warn((section, key), f"unknown key [{section}].{key} ignored{_close(key, names)}")
                continue
            try:
                value = coerce(raw, spec.kind)
            except TypeError as e:
                c.error((section, key), f"[{section}].{key} must be {e}, got {describe(raw)}")
                continue
            if problem := check_value(section, key, value):
                bad = first_bad(value) if (section, key) == ("network", "allow") else None
                if bad:  # point at the entry itself, not at the array
                    c.error_in_array((section, key), bad[0], f"[{section}].{key} {problem}")
                else:
                    c.error((section, key), f"[{section}].{key} {problem}")
                continue
            values[(section, key)] = value
    return values, services


def services_layer(
    table: Any, c: Collector
) -> tuple[tuple[ServiceSpec, ...], dict[str, dict[str, Any]]]:
    """`[services.*]`: each table's keys typed and checked like any other key, merged over the
    built-ins into specs; also the keys as given (for `config show`). A bad value is an
    error; whether an enabled service can start at all (an image; a port for MCP) is the
    loop's to report when it tries, as `shared_services.problems` says."""
    given: dict[str, dict[str, Any]] = {}
    if not isinstance(table, dict):
        c.error(("services",), f"[services] must be a table, got {describe(table)}")
        return effective({}), given
    for name, body in table.items():
        at = ("services", name)
        if not isinstance(body, dict):
            c.error(at, f"[services.{name}] must be a table, got {describe(body)}")
            continue
        keys: dict[str, Any] = {}
        for key, raw in body.items():
            kind = SERVICE_KEYS.get(key)
            if kind is None:
                c.warn(
                    (*at, key),
                    f"unknown key [services.{name}].{key} ignored{_close(key, list(SERVICE_KEYS))}",
                )
                continue
            try:
                value = coerce(raw, kind)
            except TypeError as e:
                expected = "a port number" if key == "port" else str(e)
                c.error(
                    (*at, key), f"[services.{name}].{key} must be {expected}, got {describe(raw)}"
                )
                continue
            if problem := check_service_value(key, value):
                c.error((*at, key), f"[services.{name}].{key} {problem}")
                continue
            keys[key] = value
        given[name] = keys
    return effective(given), given


def env_key(name: str) -> tuple[str, str] | None:
    """`HAL9000_WORKER_MAX_ROWS` → (`worker`, `max_rows`): a fixed section's prefix, whether
    or not the rest names one of its keys; None for other names (HAL9000_CONFIG, …)."""
    section = next((s for s in SECTIONS if name.startswith(env_name(s, ""))), None)
    if section is None:
        return None
    return section, name[len(env_name(section, "")) :].lower()


def override_vars(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of `env` the env layer takes as config overrides (each names a key of
    the schema), sorted; claudy's own (HAL9000_OFFLINE, HAL9000_CONFIG, …) are not among
    them, nor a misspelt or retired key (the env layer warns about those)."""
    out: dict[str, str] = {}
    for name in sorted(env):
        at = env_key(name)
        if at is not None and at not in RETIRED and find_key(*at) is not None:
            out[name] = env[name]
    return out


def env_layer(env: Mapping[str, str], c: Collector) -> dict[tuple[str, str], tuple[Any, str]]:
    """`HAL9000_<SECTION>_<KEY>` for the fixed sections; other HAL9000_ names are not ours."""
    out: dict[tuple[str, str], tuple[Any, str]] = {}
    for name in sorted(env):
        at = env_key(name)
        if at is None:
            continue
        section, key = at
        spec = find_key(section, key)
        if (section, key) in RETIRED:
            c.warnings.append(f"{ENV_SOURCE}: {name}: {RETIRED[(section, key)]}")
            continue
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
