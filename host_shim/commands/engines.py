"""`claudy status --all`: the parent of each engine claudy knows of, and whether it answers.

The engines known: the one this command line picks (flags, DOCKER_HOST/DOCKER_CONTEXT, the
config's `[parent] engine`, the current context), the config's, DOCKER_HOST, and each Docker
context; one row per engine URL, with every name it goes by. An engine that does not answer
is a row that says why, not an error: one host down does not hide the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hal_common import engines
from hal_common.engines import EngineChoice
from hal_common.errors import HalError
from hal_common.protocol import PARENT_ABSENT, PARENT_RUNNING
from hal_io.engine import contexts, engine_url
from host_shim.adapters.engine import HostEngine
from host_shim.adapters.parent import find_parent
from host_shim.adapters.parent_client import ParentClient, ParentCommandFailed
from host_shim.commands.context import ENGINE_HINT, Ctx

PROBE_TIMEOUT = 10  # seconds for each engine's answers


@dataclass(frozen=True)
class EngineRow:
    url: str
    names: tuple[str, ...]  # how it is known: "--engine", "DOCKER_HOST", "context NAME", …
    current: bool  # the engine this command line picks
    reachable: bool
    error: str = ""
    parent: str = PARENT_ABSENT  # the parent's state there
    workers: int = 0  # its workers (running or not)

    def to_json(self, parent_name: str) -> dict[str, object]:
        return {
            "engine": self.url,
            "names": list(self.names),
            "current": self.current,
            "reachable": self.reachable,
            "error": self.error or None,
            "parent": {"name": parent_name, "state": self.parent},
            "workers": self.workers,
        }


def known(c: Ctx) -> list[tuple[EngineChoice, str]]:
    """(engine, a name for it) for every engine claudy knows of; the current one first."""
    env = c.host.given_env or c.host.env  # as given: DOCKER_HOST before the flags pinned one
    found: list[tuple[EngineChoice, str]] = [(c.host.choice(), "current")]
    if c.cfg.parent.engine:
        found.append((engines.parse(c.cfg.parent.engine, "[parent] engine"), "[parent] engine"))
    if env.get("DOCKER_HOST"):
        found.append((EngineChoice(host=env["DOCKER_HOST"], origin="DOCKER_HOST"), "DOCKER_HOST"))
    for name, _host in contexts():
        found.append((EngineChoice(context=name, origin="context"), f"context {name}"))
    return found


def _row(c: Ctx, choice: EngineChoice, names: Iterable[str], current: bool) -> EngineRow:
    url = engine_url(choice, c.host.env)
    try:
        engine = HostEngine.connect(choice, c.host.env, ENGINE_HINT, timeout=PROBE_TIMEOUT)
        parent = find_parent(engine, c.cfg.parent.name)
    except HalError as e:
        return EngineRow(url, tuple(names), current, False, e.message)
    if parent is None:
        return EngineRow(url, tuple(names), current, True)
    count = 0
    if parent.status == PARENT_RUNNING:
        try:
            count = len(ParentClient(parent).ls(include_stopped=True))
        except ParentCommandFailed:
            count = 0
    return EngineRow(url, tuple(names), current, True, "", parent.status, count)


def rows(c: Ctx) -> list[EngineRow]:
    """One row per engine URL (its names merged), the current engine's first."""
    by_url: dict[str, tuple[EngineChoice, list[str]]] = {}
    current_url = ""
    for choice, name in known(c):
        try:
            url = engine_url(choice, c.host.env)
        except Exception:  # noqa: BLE001 - a context docker-py cannot read: listed by name
            url = choice.label
        if name == "current":
            current_url = url
            name = choice.origin if choice.origin != "default" else "default"
        entry = by_url.setdefault(url, (choice, []))
        if name not in entry[1]:
            entry[1].append(name)
    return [_row(c, choice, names, url == current_url) for url, (choice, names) in by_url.items()]


def text(found: list[EngineRow], parent_name: str) -> list[str]:
    lines = []
    for r in found:
        mark = "*" if r.current else " "
        names = ", ".join(r.names)
        if not r.reachable:
            lines.append(f"{mark} {r.url} ({names}): unreachable: {r.error}")
            continue
        workers = f", {r.workers} worker(s)" if r.parent == PARENT_RUNNING else ""
        lines.append(f"{mark} {r.url} ({names}): parent {parent_name} {r.parent}{workers}")
    return lines
