"""What `claudy` and `hal-agent` share as command lines: colour, verbosity, "no such command",
shell completion.

- `--no-color` (and `NO_COLOR` in the environment, https://no-color.org): no ANSI codes from
  click (`ctx.color`) or rich (`console()`);
- `-v/--verbose`: log lines down to debug (docker-py's engine calls among them);
  `-q/--quiet`: no progress or information lines (warnings, errors and a command's own
  output still show);
- `Group`: an unknown word says "No such command 'lss'. Did you mean 'ls'?", from the
  visible commands only (a hidden one is never suggested);
- `completion_command`: `PROG completion bash|zsh|fish` prints click's completion script;
  `complete_worker` completes a worker NAME from the root group's `list_workers`.

The settings live here, for the process (a command line is one process): the options'
callbacks set them on every run, so that they never carry over from an earlier one.
click's completion modules and rich are imported only when used (start-up time).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem, ShellComplete
    from rich.console import Console

SHELLS = ("bash", "zsh", "fish")
GLOBAL_FLAGS = ("--no-color", "-v", "--verbose", "-q", "--quiet")


@dataclass
class _Settings:
    no_color: bool = False
    verbose: bool = False
    quiet: bool = False


_settings = _Settings()


def color(env: Mapping[str, str] | None = None) -> bool:
    """Colour allowed: no `--no-color`, and `NO_COLOR` unset or empty."""
    env = os.environ if env is None else env
    return not _settings.no_color and not env.get("NO_COLOR")


def verbosity() -> int:
    """-1 quiet, 0 normal, 1 verbose."""
    return 1 if _settings.verbose else -1 if _settings.quiet else 0


def log_level() -> int:
    return logging.DEBUG if verbosity() > 0 else logging.WARNING


def flags() -> list[str]:
    """The global flags in force, as words (for a command line run on another's behalf)."""
    return (["-v"] if _settings.verbose else []) + (["-q"] if _settings.quiet else [])


def console(**kw: Any) -> Console:
    """A rich console that says no ANSI codes at all when colour is off (rich alone would
    keep bold and dim under NO_COLOR); `quiet` when -q and `progress` is asked."""
    from rich.console import Console

    if not color():
        kw["color_system"] = None
    if kw.pop("progress", False) and verbosity() < 0:
        kw["quiet"] = True
    return Console(**kw)


def leading_flags(args: list[str]) -> int:
    """How many of `args`' first words are global flags (claudy looks past them for its word)."""
    n = 0
    while n < len(args) and args[n] in GLOBAL_FLAGS:
        n += 1
    return n


def _set_no_color(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    _settings.no_color = value
    if not color():
        ctx.color = False  # click.echo/secho strip ANSI codes in this context and its children


def _set_verbose(_ctx: click.Context, _: click.Parameter, value: bool) -> None:
    _settings.verbose = value


def _set_quiet(_ctx: click.Context, _: click.Parameter, value: bool) -> None:
    _settings.quiet = value


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--no-color, -v/--verbose, -q/--quiet on a group (not passed to its callback)."""
    for option in reversed(
        [
            click.option(
                "--no-color",
                is_flag=True,
                expose_value=False,
                callback=_set_no_color,
                help="No colours or other ANSI codes (as NO_COLOR=1 does).",
            ),
            click.option(
                "-v",
                "--verbose",
                is_flag=True,
                expose_value=False,
                callback=_set_verbose,
                help="Debug log lines too, the engine's calls among them.",
            ),
            click.option(
                "-q",
                "--quiet",
                is_flag=True,
                expose_value=False,
                callback=_set_quiet,
                help="No progress or information lines; warnings and errors still show.",
            ),
        ]
    ):
        f = option(f)
    return f


def check_flags(ctx: click.Context) -> None:
    if _settings.verbose and _settings.quiet:
        raise click.UsageError("-v and -q contradict each other: give one", ctx)


class Group(click.Group):
    """A group that answers an unknown word with the visible commands closest to it, and
    whose root names the workers for completion (`list_workers`: cheap, may raise)."""

    list_workers: Callable[[], list[str]] | None = None

    def visible_commands(self, ctx: click.Context) -> list[str]:
        names = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                names.append(name)
        return names

    def no_such_command(self, ctx: click.Context, word: str, nor: str = "") -> click.UsageError:
        """'No such command 'lss'. Did you mean 'ls'?' (without a near one: "No such command
        {nor} 'x'."), a usage error (exit 2)."""
        import difflib  # only when a word is wrong

        close = difflib.get_close_matches(word, self.visible_commands(ctx), n=3, cutoff=0.6)
        if not close:
            return click.UsageError(f"No such command{nor} {word!r}.", ctx)
        quoted = [repr(c) for c in close]
        either = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
        return click.UsageError(f"No such command {word!r}. Did you mean {either}?", ctx)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        word = args[0]
        if (
            not ctx.resilient_parsing
            and not word.startswith("-")
            and self.get_command(ctx, word) is None
        ):
            raise self.no_such_command(ctx, word)
        return super().resolve_command(ctx, args)


def complete_worker(
    ctx: click.Context, _: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """A worker NAME: the names the root group's `list_workers` gives (nothing when it
    fails); a word that starts like a path completes as a directory (NAME may be one)."""
    from click.shell_completion import CompletionItem

    if incomplete.startswith(("/", ".", "~")) or "/" in incomplete:
        return [CompletionItem(incomplete, type="dir")]
    root = ctx.find_root().command
    lister = getattr(root, "list_workers", None)
    try:
        names = lister() if lister is not None else []
    except Exception:  # noqa: BLE001 - completion says nothing rather than a trace in the line
        names = []
    return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]


def complete_dir(_ctx: click.Context, _: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """A directory (click.Path() alone completes any file)."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="dir")]


# click's bash script, but for a `dir` item: the directories are added to the other items
# (`compgen -d`, shown as file names: a `/` and no space after one) where click's script
# drops the other items and lets bash complete directories only when nothing else matched.
# claudy's first word is a command or a directory: both must show.
_BASH_DIRS = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \
%(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY+=($(compgen -d -- "$value"))
            compopt -o filenames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


def completion_class(shell: str, dirs_with_words: bool = False) -> type[ShellComplete]:
    from click.shell_completion import BashComplete, get_completion_class

    if shell == "bash" and dirs_with_words:

        class BashDirs(BashComplete):
            source_template = _BASH_DIRS

        return BashDirs
    found = get_completion_class(shell)
    if found is None:  # one of SHELLS: click has them all
        raise click.UsageError(f"no completion for {shell}")
    return found


def completion_command(
    prog_name: str, complete_var: str, dirs_with_words: bool = False
) -> click.Command:
    """`PROG completion bash|zsh|fish`: the script that makes the shell complete PROG."""

    @click.command(
        "completion",
        help=f"""Print the shell completion script for {prog_name}.

        \b
        bash: eval "$({prog_name} completion bash)" in ~/.bashrc
        zsh:  eval "$({prog_name} completion zsh)" in ~/.zshrc (after compinit)
        fish: {prog_name} completion fish > ~/.config/fish/completions/{prog_name}.fish
        """,
    )
    @click.argument("shell", type=click.Choice(SHELLS))
    @click.pass_context
    def completion(ctx: click.Context, shell: str) -> None:
        cls = completion_class(shell, dirs_with_words)
        root = ctx.find_root().command
        click.echo(cls(root, {}, prog_name, complete_var).source(), nl=False)  # as click does

    return completion
