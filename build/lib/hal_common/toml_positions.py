"""Where each key of a TOML text sits (line and column), since tomlkit keeps no positions.

Pure. A small scanner that knows just enough TOML to never mistake the inside of a string, an
array or a comment for a key: table headers, dotted and quoted keys, the four string forms,
arrays and inline tables. It is run only on text that tomlkit has already parsed, so it does not
validate; on anything it does not understand it stops and returns what it found so far.
"""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str, ...]


@dataclass(frozen=True)
class KeyPos:
    """1-based line and column of a key, and of its value (a header's value is the header)."""

    line: int
    column: int
    value_line: int
    value_column: int


class _Stop(Exception):
    """The scanner met something it does not understand (never raised out of this module)."""


_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.found: dict[Path, KeyPos] = {}

    # -- positions ---------------------------------------------------------------------------

    def where(self, i: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, i) + 1
        return line, i - (self.text.rfind("\n", 0, i) + 1) + 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def record(self, path: Path, key_at: int, value_at: int) -> None:
        if path not in self.found:  # the first definition is the one a reader looks for
            self.found[path] = KeyPos(*self.where(key_at), *self.where(value_at))

    # -- lexing ------------------------------------------------------------------------------

    def skip_blank(self, newlines: bool) -> None:
        """Spaces and tabs; with `newlines`, also newlines and comments."""
        while self.i < len(self.text):
            c = self.text[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif newlines and c == "#":
                self.skip_comment()
            else:
                return

    def skip_comment(self) -> None:
        end = self.text.find("\n", self.i)
        self.i = len(self.text) if end < 0 else end

    def string(self) -> str:
        """A basic or literal string, single- or multi-line; returns its raw body."""
        for quote in ('"""', "'''"):
            if self.peek(3) == quote:
                start = self.i + 3
                end = self.find_close(quote, start, escapes=quote[0] == '"')
                extra = 0  # up to two quotes may sit just inside the closing delimiter
                while extra < 2 and self.text[end + 3 : end + 4] == quote[0]:
                    end, extra = end + 1, extra + 1
                self.i = end + 3
                return self.text[start:end]
        quote = self.text[self.i]
        start = self.i + 1
        end = self.find_close(quote, start, escapes=quote == '"')
        self.i = end + 1
        return self.text[start:end]

    def find_close(self, quote: str, start: int, escapes: bool) -> int:
        j = start
        while True:
            k = self.text.find(quote, j)
            if k < 0:
                raise _Stop
            if escapes:
                slashes = 0
                while k - 1 - slashes >= start and self.text[k - 1 - slashes] == "\\":
                    slashes += 1
                if slashes % 2:
                    j = k + 1
                    continue
            return k

    def key(self) -> list[str]:
        """A dotted key: bare or quoted parts separated by dots."""
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.i
                while self.i < len(self.text) and self.text[self.i] in _BARE:
                    self.i += 1
                if self.i == start:
                    raise _Stop
                parts.append(self.text[start : self.i])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.i += 1

    # -- structure ---------------------------------------------------------------------------

    def document(self) -> dict[Path, KeyPos]:
        table: Path = ()
        try:
            while True:
                self.skip_blank(newlines=True)
                if self.i >= len(self.text):
                    break
                if self.peek() == "[":
                    at = self.i
                    double = self.peek(2) == "[["
                    self.i += 2 if double else 1
                    table = tuple(self.key())
                    self.i += 2 if double else 1
                    for n in range(1, len(table) + 1):  # `[a.b]` also defines `a`
                        self.record(table[:n], at, at)
                else:
                    self.key_value(table)
                self.skip_blank(newlines=False)
                if self.peek() == "#":
                    self.skip_comment()
        except (_Stop, IndexError):
            pass
        return self.found

    def key_value(self, prefix: Path) -> None:
        at = self.i
        path = prefix + tuple(self.key())
        if self.peek() != "=":
            raise _Stop
        self.i += 1
        self.skip_blank(newlines=False)
        for n in range(len(prefix) + 1, len(path)):  # `a.b.c = 1` also defines a and a.b
            self.record(path[:n], at, self.i)
        self.record(path, at, self.i)
        self.value(path)

    def value(self, path: Path) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.i += 1
            while True:
                self.skip_blank(newlines=True)
                if self.peek() == "]":
                    self.i += 1
                    return
                self.value(path)
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.i += 1
        elif c == "{":
            self.i += 1
            while True:
                self.skip_blank(newlines=False)
                if self.peek() == "}":
                    self.i += 1
                    return
                self.key_value(path)
                self.skip_blank(newlines=False)
                if self.peek() == ",":
                    self.i += 1
        else:  # number, boolean, date: runs to a delimiter
            start = self.i
            while self.i < len(self.text) and self.text[self.i] not in ",]}#\r\n":
                self.i += 1
            if self.i == start:
                raise _Stop


def key_positions(text: str) -> dict[Path, KeyPos]:
    """Every key path defined in `text` (tables, dotted keys, inline tables) → its position."""
    return _Scanner(text).document()


def locate(positions: dict[Path, KeyPos], path: Path) -> KeyPos | None:
    """The position of `path`, or of its nearest defined ancestor (e.g. an inline table)."""
    for n in range(len(path), 0, -1):
        if path[:n] in positions:
            return positions[path[:n]]
    return None
