"""A spawn asked of the loop (`hal-agent spawn` through the control socket, commands/quick.py).

The command's own process would spend most of a spawn importing docker-py, libtmux and the
config's parser; the loop has them loaded. So the loop runs the very same spawn
(`sessions.spawn`, the same config file read anew, the command's environment) in a thread of
its own, and answers with what the command would have printed: the session, the warnings it
would have logged, a refusal with its exit code. What needs the command's terminal (a
project image to build, its progress shown line by line) is not done here: the answer says
`fallback` before anything was made, and the command does the spawn itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from hal_common.config import load_config
from hal_common.errors import ConfigError, HalError, UsageError
from hal_common.layout import ParentLayout
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.tmux import TmuxUI, server_for
from parent_agent.app import sessions
from parent_agent.core.control import Answer, SpawnWorker

log = logging.getLogger(__name__)


class NeedsTerminal(Exception):
    """The spawn would show a build's progress: the command does it on its terminal."""


def _needs_terminal(line: str) -> None:
    raise NeedsTerminal(line)


class _Heard(logging.Handler):
    """The warnings one thread logs (what the command would have shown on its stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


@contextmanager
def _heard() -> Iterator[_Heard]:
    heard = _Heard()
    root = logging.getLogger()
    root.addHandler(heard)
    try:
        yield heard
    finally:
        root.removeHandler(heard)


def spawn(
    req: SpawnWorker,
    engine: InnerEngine,
    layout: ParentLayout,
    ui: TmuxUI | None = None,
) -> Answer:
    """Do `req` as `hal-agent spawn` would (see the module's doc); never raises."""
    tmux = ui or TmuxUI(server_for(layout.tmux_sock))  # libtmux runs nothing until asked
    env = dict(req.env)
    with _heard() as heard:
        try:
            cfg = load_config(layout.config_file, env)
            for w in cfg.warnings:
                log.warning("%s", w)
            spec = sessions.spawn(
                engine, tmux if req.window else None, cfg, req.directory, layout, env,
                image_id=req.image_id or None, name=req.name or None, image=req.image or None,
                progress=_needs_terminal,
            )  # fmt: skip
        except NeedsTerminal:
            return Answer(False, "a project image to build", fallback=True)
        except HalError as e:
            if req.client and isinstance(e, UsageError | ConfigError):  # as commands' _told
                with suppress(Exception):  # the refusal stands, said or not
                    tmux.message(req.client, f"hal-agent: {e.message}", hold=True)
            return Answer(False, str(e), notes=tuple(heard.lines), code=e.exit_code)
        except Exception as e:  # a bug or an engine's surprise: said, and in the loop's log
            log.exception("spawn of %s failed", req.directory)
            return Answer(False, f"spawning {req.directory} failed: {e}", notes=tuple(heard.lines))
    note = sessions.write_warning(spec)
    if req.client:
        with suppress(Exception):  # the worker runs; showing it is a courtesy
            if note:
                tmux.message(req.client, f"hal-agent: {note}", hold=True)
            tmux.focus(req.client, spec.session)
    return Answer(True, value=spec.session, notes=tuple(heard.lines), hold=note is not None)


def serve(
    req: SpawnWorker,
    engine: InnerEngine,
    layout: ParentLayout,
    answer: Callable[[Answer], None],
) -> None:
    """`spawn` in a thread of its own: the loop goes on meanwhile (a spawn takes the engine
    half a second, a stopped worker's image check more)."""
    threading.Thread(
        target=lambda: answer(spawn(req, engine, layout)), name="spawn", daemon=True
    ).start()
