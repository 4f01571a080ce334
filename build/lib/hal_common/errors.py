"""One root exception; subclasses only where a caller acts differently.

Each error carries the exit code the CLIs use and a hint saying what to do.
"""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ENGINE = 3
EXIT_LOOP = 4  # the parent's loop (`hal-agent run`) is not running, or did not answer
EXIT_NO_SESSION = 5
EXIT_IMAGE_MISSING = 10  # the inner engine lacks the worker image (claudy loads it first)


class HalError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(HalError):
    """Bad input from the user: a wrong path, a bad argument."""

    exit_code = EXIT_USAGE


class ConfigError(HalError):
    """The config file is unreadable or invalid; the last good config stays.

    `source`, `line` and `column` (1-based) say where, when known; `message` already starts
    with `source:line:column:` so it reads like a compiler's error.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        source: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.source = source
        self.line = line
        self.column = column


class EngineUnavailable(HalError):
    """A Docker engine (host or inner) does not answer."""

    exit_code = EXIT_ENGINE


class LoopUnavailable(HalError):
    """The parent's loop does not answer on its control socket (not running, or busy past
    the deadline)."""

    exit_code = EXIT_LOOP


class NoSuchSession(HalError):
    """No worker matches the name or path given."""

    exit_code = EXIT_NO_SESSION


class ImageMissing(HalError):
    """The inner engine lacks the worker image the host expects."""

    exit_code = EXIT_IMAGE_MISSING


class NameConflict(HalError):
    """A container of that name exists already (the engine's 409): another process was first."""
