"""The TOML config: text (and environment) → validated frozen dataclasses, with origins.

Pure except `load_config` and `read_config`, which read one file. Layers, lowest first:
embedded defaults, the file, then `HAL9000_<SECTION>_<KEY>` environment variables. Errors carry
file, line and column; unknown keys are warnings naming their line. Watching the file belongs
to `parent_agent.adapters.config_watch`, editing it to `hal_common.config_edit`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hal_common.config_layers import (
    ENV_PREFIX,
    ENV_SOURCE,
    HINT,
    Collector,
    env_layer,
    env_name,
    file_layer,
    override_vars,
    parse_toml,
    text_value,
)
from hal_common.config_schema import (
    SECTIONS,
    Config,
    DashboardConfig,
    KeysConfig,
    LogConfig,
    NetworkConfig,
    NotifyConfig,
    ParentConfig,
    WatchConfig,
    WorkerConfig,
    key_conflicts,
    parse_memory,
    schema_keys,
)
from hal_common.errors import ConfigError
from hal_common.toml_positions import locate

__all__ = [
    "ENV_PREFIX",
    "Config",
    "ConfigError",
    "DashboardConfig",
    "KeysConfig",
    "LogConfig",
    "NetworkConfig",
    "NotifyConfig",
    "Origin",
    "ParentConfig",
    "Resolved",
    "Setting",
    "WatchConfig",
    "WorkerConfig",
    "env_name",
    "load_config",
    "override_vars",
    "parse_config",
    "parse_memory",
    "read_config",
    "resolve",
    "resolve_saved",
    "text_value",
    "worker_env",
]

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


def resolve(
    text: str | None, source: str = "config.toml", env: Mapping[str, str] | None = None
) -> Resolved:
    """Defaults, then the file's `text` (None: no file), then `env`: the config and origins.

    Raises ConfigError listing every problem (the first one's line and column on the error).
    """
    c = Collector(source, text)
    doc = parse_toml(text, source) if text is not None else {}
    values, (services, given) = file_layer(doc, c)
    overrides = env_layer(env or {}, c)

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
    for name, body in given.items():
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


def worker_env(cfg: WorkerConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """A worker's own variables from `[worker] env`: an array of names takes each value from
    `environ` (the parent's environment; a name it lacks is left out), a table gives literal
    values. Names and values were checked at load (names, no NUL)."""
    if isinstance(cfg.env, dict):
        return dict(cfg.env)
    return {name: environ[name] for name in cfg.env if name in environ}


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """The effective config: `path` (embedded defaults when it does not exist) and `env`
    (default: this process's environment)."""
    return read_config(path, os.environ if env is None else env, missing_ok=True).config
