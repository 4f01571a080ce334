"""`config set`: one value changed through the tomlkit document, validated, written atomically.

`set_value` is pure (text in, text out): everything outside the edited value keeps its bytes,
comments and order. `atomic_write` is the only I/O: a temp file in the same directory, fsync,
`os.replace`, keeping the file's mode and owner, and writing through a symlink (dotfiles).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import secrets
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import AoT, Table

from hal_common.config import resolve, text_value
from hal_common.config_schema import find_key, schema_keys
from hal_common.errors import ConfigError, UsageError
from hal_common.shared_services import SERVICE_KEYS

KeyPath = tuple[str, ...]


def parse_key(key: str) -> KeyPath:
    """`worker.memory` or `services.web.port` (TOML key syntax, quotes allowed) → its parts.

    UsageError for anything that is not a config key, with the nearest real one.
    """
    try:
        doc = tomlkit.parse(f"{key} = 0").unwrap()
    except ParseError:
        doc = {}
    path: list[str] = []
    node: Any = doc
    while isinstance(node, dict) and len(node) == 1:
        (part, node), *_ = node.items()
        path.append(part)
    if node != 0 or not path:
        raise UsageError(f"not a config key: {key!r}", hint="keys look like worker.memory")
    if len(path) == 2 and find_key(path[0], path[1]):
        return tuple(path)
    if len(path) == 3 and path[0] == "services" and path[2] in SERVICE_KEYS:
        return tuple(path)
    known = [k.dotted for k in schema_keys()]
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"did you mean {' or '.join(close)}?" if close else "`config show` lists every key"
    if path[0] == "services" and len(path) == 3:
        near = difflib.get_close_matches(path[2], list(SERVICE_KEYS), n=1)
        hint = (
            f"did you mean services.{path[1]}.{near[0]}?"
            if near
            else f"a service takes {', '.join(SERVICE_KEYS)}"
        )
    elif path[0] == "services":
        hint = "services take services.NAME.KEY, e.g. services.web.enabled"
    raise UsageError(f"no such config key: {key}", hint=hint)


def typed_value(path: KeyPath, raw: str) -> Any:
    """VALUE from the command line: a TOML value when it parses (`2`, `1.5`, `true`, `["a"]`),
    else the text; a string key keeps the text as typed."""
    if len(path) == 3 and path[0] == "services":
        return text_value(raw, SERVICE_KEYS.get(path[2]))
    spec = find_key(path[0], path[1]) if len(path) == 2 else None
    return text_value(raw, spec.kind if spec else None)


def _line_endings(before: str, after: str) -> str:
    """Lines tomlkit adds end in `\\n`; keep a CRLF file CRLF."""
    if "\r\n" in before and before.count("\n") == before.count("\r\n"):
        return after.replace("\r\n", "\n").replace("\n", "\r\n")
    return after


def set_value(text: str, path: KeyPath, value: Any, source: str = "config.toml") -> str:
    """`text` with the value at `path` set (added when missing); the rest byte for byte.

    Raises ConfigError, leaving nothing changed, when the result would not be a valid config
    (a wrong type, a bad value, or a file that does not parse to begin with).
    """
    try:
        doc = tomlkit.parse(text)
    except ParseError as e:
        raise ConfigError(
            f"{source}:{e.line}:{e.col + 1}: the file does not parse, so it cannot be edited: {e}",
            hint="fix it in an editor (`config validate` shows every problem)",
            source=source,
        ) from None
    node: Any = doc
    for part in path[:-1]:
        if part not in node:
            node[part] = tomlkit.table(is_super_table=node is doc and part == "services")
        node = node[part]
        if isinstance(node, AoT) or not isinstance(node, dict | Table):
            raise ConfigError(
                f"{source}: {'.'.join(path[:-1])} is not a table, so {'.'.join(path)} cannot "
                "be set in it",
                hint="fix the file in an editor",
                source=source,
            )
    if isinstance(value, dict):  # a value, not a new [section]: `env = { A = "b" }`
        inline = tomlkit.inline_table()
        inline.update(value)
        value = inline
    node[path[-1]] = value
    new = doc.as_string()
    if not new.endswith("\n") and (not text or text.endswith("\n")):
        new += "\n"
    new = _line_endings(text, new)
    _check_edit(text, new, path, value, source)
    return new


def _check_edit(before: str, after: str, path: KeyPath, value: Any, source: str) -> None:
    """The edited file must be valid (env plays no part in the file). When it is not, blame
    the new value if the file was valid before, else the file's own problems, with positions
    in the text the user has (not in the text we did not write)."""
    try:
        resolve(after, source)
    except ConfigError as refused:
        try:
            resolve(before or None, source)
        except ConfigError as existing:
            raise ConfigError(
                f"{source} already has problems; fix them first:\n{existing.message}",
                hint="`config validate` lists them; nothing was written",
                source=source,
                line=existing.line,
                column=existing.column,
            ) from None
        where = re.compile(rf"^{re.escape(source)}:(\d+:\d+:)? ")
        why = "; ".join(where.sub("", line) for line in refused.message.splitlines())
        shown = tomlkit.item(list(value) if isinstance(value, tuple) else value).as_string()
        raise ConfigError(
            f"refused {'.'.join(path)} = {shown}: {why}", hint=f"{source} is unchanged"
        ) from None


def atomic_write(path: Path, text: str) -> None:
    """Replace `path`'s content at once: readers see the old file or the new one, never half.

    Creates the directory when missing. An existing file keeps its mode and (when we may)
    owner; a new one gets 0o666 minus the umask and, when written by root (the parent
    container), the directory's owner, so the host user can still edit it.
    """
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    for _ in range(10):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:  # O_EXCL + 0o666: a fresh file, mode from the umask like any editor's
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise ConfigError(f"cannot create a temporary file next to {target}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        owner = os.stat(target.parent) if old is None and os.geteuid() == 0 else old
        if old is not None:
            os.chmod(tmp, old.st_mode & 0o7777)
        if owner is not None and (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):  # only root may give files away
                os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable, where supported
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_text(path: Path) -> str:
    """The file's exact text ('' when missing): no newline translation, so edits keep CRLF."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}", source=str(path)) from None


def set_in_file(path: Path, key: str, raw: str) -> Any:
    """`config set KEY VALUE` on `path`: parse, edit, validate, write. Returns the value set.

    Nothing is written when anything fails; ConfigError/UsageError say why.
    """
    parts = parse_key(key)
    value = typed_value(parts, raw)
    before = read_text(path)
    after = set_value(before, parts, value, source=str(path))
    if after != before or not path.exists():
        atomic_write(path, after)
    return value
