"""`config show|get|set|validate|path`: one click group, shared by `hal-agent` and `claudy`.

Adapter over the pure config modules. HalErrors propagate to the owning CLI's group, which
prints them and exits with their code (ConfigError and UsageError: 2).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
import tomlkit

from hal_common.config import Config, Resolved, Setting, env_name, read_config
from hal_common.config_edit import parse_key, set_in_file
from hal_common.config_schema import RESTART, find_key
from hal_common.errors import UsageError
from hal_common.layout import ParentLayout
from hal_common.project_config import PROJECT_FILE, widening
from hal_common.projects import expand_user
from hal_io import manners, project_files


def toml_text(value: Any) -> str:
    """A value as it would be written in the file."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, dict):  # one line, as `key = {…}` (a table would span several)
        table = tomlkit.inline_table()
        table.update(value)
        value = table
    return str(tomlkit.item(value).as_string())


def plain(value: Any) -> str:
    """A value for scripts: strings bare, everything else as TOML."""
    return value if isinstance(value, str) else toml_text(value)


def _origin(s: Setting) -> str:
    return f"{s.origin} ({s.detail})" if s.detail else s.origin


def _render(settings: Iterable[Setting]) -> list[str]:
    """TOML with each value's origin as a comment: `memory = "2g"  # env (HAL9000_…)`."""
    out: list[str] = []
    table = ""
    rows = list(settings)
    width = max((len(s.key.rsplit(".", 1)[1]) + len(toml_text(s.value)) for s in rows), default=0)
    for s in rows:
        section, key = s.key.rsplit(".", 1)
        if section != table:
            out.extend([*([""] if out else []), f"[{section}]"])
            table = section
        line = f"{key} = {toml_text(s.value)}"
        out.append(f"{line:<{width + 3}}  # {_origin(s)}")
    return out


def _warn(resolved: Resolved) -> None:
    for w in resolved.config.warnings:
        click.secho(f"warning: {w}", err=True, fg="yellow")


def config_group(path_of: Callable[[], Path]) -> click.Group:
    """The `config` group; `path_of()` gives the config file (host or parent side)."""

    @click.group("config", cls=manners.Group)
    def group() -> None:
        """Show, check and change the config (one TOML file configures everything).

        Values come from, lowest first: embedded defaults, the file, and HAL9000_<SECTION>_<KEY>
        environment variables.
        """

    @group.command("path")
    def path_() -> None:
        """Print the config file's path (it need not exist)."""
        click.echo(str(path_of()))

    def effective() -> Resolved:
        resolved = read_config(path_of(), os.environ, missing_ok=True)
        _warn(resolved)
        return resolved

    @group.command()
    @click.option("--json", "as_json", is_flag=True, help="One JSON object, key → value/origin.")
    def show(as_json: bool) -> None:
        """The effective config, each value with its origin: default, file or env."""
        path = path_of()
        resolved = effective()
        if as_json:
            doc = {
                "path": str(path),
                "exists": path.exists(),
                "settings": {
                    s.key: {"value": s.value, "origin": s.origin, "detail": s.detail}
                    for s in resolved.settings
                },
            }
            click.echo(json.dumps(doc, indent=2, default=str))
            return
        state = "" if path.exists() else " (absent: embedded defaults)"
        click.echo(f"# {path}{state}")
        click.echo("\n".join(_render(resolved.settings)))

    @group.command()
    @click.argument("key")
    def get(key: str) -> None:
        """Print KEY's effective value (a section, e.g. `worker`, prints its keys)."""
        resolved = effective()
        if (s := resolved.get(key)) is not None:
            click.echo(plain(s.value))
            return
        inside = [s for s in resolved.settings if s.key.startswith(f"{key}.")]
        if inside:
            click.echo("\n".join(_render(inside)))
            return
        parse_key(key)  # raises with the nearest key
        raise UsageError(f"{key} is not set", hint="`config show` lists what is")

    @group.command("set")
    @click.argument("key")
    @click.argument("value")
    def set_(key: str, value: str) -> None:
        """Set KEY to VALUE in the file, keeping comments and layout.

        VALUE is a TOML value when it parses as one (2, 1.5, true, '["a", "b"]'), else a string.
        The whole file is validated first; a bad value leaves it untouched.
        """
        path = path_of()
        written = set_in_file(path, key, value)
        click.echo(f"{key} = {toml_text(written)}")
        parts = parse_key(key)
        spec = find_key(*parts) if len(parts) == 2 else None
        if spec is not None and (var := env_name(*parts)) in os.environ:
            click.secho(f"note: {var} is set and overrides this value here", err=True)
        if spec is not None and spec.apply == RESTART:
            click.secho(
                "note: [parent] settings apply when the parent is recreated "
                "(claudy down && claudy)",
                err=True,
            )

    @group.command()
    @click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--project",
        "project",
        default=None,
        type=click.Path(file_okay=False, exists=True),
        help="Check DIR's .hal9000.toml (at its repository's root) instead, and say what in it "
        "needs `trust`.",
    )
    def validate(file: Path | None, project: str | None) -> None:
        """Check FILE (default: the config file, with env overrides); exit 0 if valid, else 2.

        With --project DIR: the project file of DIR's repository, against this config."""
        if project is not None:
            validate_project(project, effective().config)
            return
        if file is not None:
            resolved = read_config(file, {}, missing_ok=False)
            shown = file
        else:
            shown = path_of()
            resolved = read_config(shown, os.environ, missing_ok=True)
            if not shown.exists():
                click.echo(f"{shown}: no file; the embedded defaults apply")
                return
        _warn(resolved)
        click.echo(f"{shown}: ok")

    return group


def validate_project(directory: str, cfg: Config) -> None:
    """`config validate --project DIR`: the file's problems (ConfigError, exit 2), else ok
    and what in it widens the user's config (those keys wait for `trust`)."""
    root, pf = project_files.load(directory, roots_of(cfg))
    if pf is None:
        click.echo(f"{root}: no {PROJECT_FILE}; the user's config applies as it is")
        return
    click.echo(f"{pf.source}: ok (sha256 {pf.sha256})")
    reasons = widening(pf, cfg)
    if reasons:
        click.echo(f"these widen your config and apply only once trusted (`claudy trust {root}`):")
        for line in reasons:
            click.echo(f"  {line}")


def roots_of(cfg: Config) -> tuple[str, ...]:
    """The roots, resolved: in the parent, the ones claudy started it with (HAL_ROOTS)."""
    if os.environ.get("HAL_ROOTS"):
        return tuple(r for r in os.environ["HAL_ROOTS"].split(":") if r)
    home = os.path.expanduser("~")
    return tuple(os.path.realpath(expand_user(r, home)) for r in cfg.parent.roots)


def parent_group() -> click.Group:
    """`hal-agent config`: the file as mounted in the parent, `/config/hal9000/config.toml`."""
    return config_group(lambda: ParentLayout.from_env(os.environ).config_file)
