"""`claudy uninstall`'s world: find what hal-9000 made (engine and disk), then remove a plan.

The plan is pure (`host_shim.core.uninstall`); this module reads the engine by label, the
host's directories and install.sh's manifest, and removes what a plan names, in order:
the parents (stopped first, so their workers stop in order), images, volumes, files, the
link and the profile line, and the venv last.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from hal_common import labels
from hal_common.errors import HalError
from hal_common.layout import HostLayout
from hal_common.protocol import PARENT_RESTARTING, PARENT_RUNNING
from host_shim.adapters.engine import HostEngine
from host_shim.core.build_context import OFFLINE_BASE, SOURCE_LABEL
from host_shim.core.parent_spec import STOP_TIMEOUT, volume_names
from host_shim.core.uninstall import MANIFEST_NAME, Entry, Found, Plan, parse_manifest

log = logging.getLogger(__name__)


def data_dirs(layout: HostLayout, env: Mapping[str, str]) -> list[str]:
    """hal-9000's cache (hints, Claude Code's tarballs) and state (the build's log and lock)."""
    cache = env.get("XDG_CACHE_HOME") or str(layout.home / ".cache")
    state = env.get("XDG_STATE_HOME") or str(layout.home / ".local" / "state")
    return [os.path.join(cache, "hal9000"), os.path.join(state, "hal9000")]


def manifest_path(env: Mapping[str, str]) -> Path:
    """install.sh's manifest: in the venv that runs claudy (HAL9000_VENV names another)."""
    return Path(env.get("HAL9000_VENV") or sys.prefix) / MANIFEST_NAME


def find(
    engine: HostEngine | None, layout: HostLayout, env: Mapping[str, str], parent_name: str
) -> tuple[Found, tuple[str, ...]]:
    """What is there now (no engine: the host's files only), and warnings (a manifest line
    that is not one)."""
    parents: list[str] = []
    volumes: list[str] = []
    images: list[str] = []
    if engine is not None:
        found_parents = engine.containers(
            labels.managed_filter(labels.ROLE_PARENT), "listing the parents"
        )
        parents = [p.name for p in found_parents]
        volumes = [v for p in found_parents for v in p.volumes]
        volumes += volume_names(parent_name).values()  # the config's, after a `claudy down`
        volumes = [v for v in dict.fromkeys(volumes) if engine.has_volume(v)]
        built = engine.images_labelled(SOURCE_LABEL, "listing hal-9000's images")
        images = [ref for i in built for ref in (i.tags or (i.id,))]
        if engine.has_image(OFFLINE_BASE):
            images.append(OFFLINE_BASE)
    mpath = manifest_path(env)
    entries: tuple[Entry, ...] = ()
    warnings: tuple[str, ...] = ()
    if mpath.is_file():
        entries, warnings = parse_manifest(mpath.read_text(errors="replace"))
    found = Found(
        parents=tuple(parents),
        images=tuple(dict.fromkeys(images)),
        volumes=tuple(volumes),
        config_dir=str(layout.config_dir) if layout.config_dir.is_dir() else None,
        data_dirs=tuple(d for d in data_dirs(layout, env) if os.path.lexists(d)),
        manifest=entries,
        manifest_path=str(mpath) if mpath.is_file() else None,
    )
    return found, warnings


def _remove_path(path: str) -> bool:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
        return True
    if os.path.lexists(path):
        os.unlink(path)
        return True
    return False


def _drop_line(path: str, line: str) -> bool:
    """Remove the exact `line` from the file `path` (atomically); False when absent."""
    try:
        text = Path(path).read_text()
    except OSError:
        return False
    lines = text.splitlines(keepends=True)
    kept = [x for x in lines if x.rstrip("\n") != line]
    if len(kept) == len(lines):
        return False
    tmp = f"{path}.hal9000-{os.getpid()}"
    Path(tmp).write_text("".join(kept))
    shutil.copymode(path, tmp)
    os.replace(tmp, path)
    return True


def remove(engine: HostEngine | None, plan: Plan, say: Callable[[str], None]) -> list[str]:
    """Remove what `plan` names, saying each; the failures (each a line), the rest done.
    Without an engine, the plan names nothing of one (`find`)."""
    failed: list[str] = []

    def done(what: str, removed: bool) -> None:
        if removed:
            say(f"removed {what}")

    if engine is not None:
        for name in plan.parents:
            try:
                _remove_parent(engine, name, say)
                done(f"container {name}", True)
            except HalError as e:
                failed.append(f"container {name}: {e.message}")
        removals: list[tuple[str, str, Callable[[str, str], bool]]]
        removals = [("image", r, engine.remove_image) for r in plan.images]
        removals += [("volume", v, engine.remove_volume) for v in plan.volumes]
        for kind, ref, call in removals:
            try:
                done(f"{kind} {ref}", call(ref, f"removing {kind} {ref}"))
            except HalError as e:
                failed.append(f"{kind} {ref}: {e.message}")
    for path in plan.paths:
        try:
            done(path, _remove_path(path))
        except OSError as e:
            failed.append(f"{path}: {e}")
    for link, venv in plan.links:
        if os.path.islink(link) and os.readlink(link).startswith(venv + os.sep):
            os.unlink(link)
            done(link, True)
        elif os.path.lexists(link):
            failed.append(f"{link}: not a link into {venv} any more (left as it is)")
    for path, line in plan.profile_lines:
        try:
            done(f"the line {line!r} from {path}", _drop_line(path, line))
        except OSError as e:
            failed.append(f"{path}: {e}")
    if plan.venv:
        # the running program's own files, last: Python has what it needs loaded by now
        try:
            done(f"{plan.venv} (claudy itself)", _remove_path(plan.venv))
        except OSError as e:
            failed.append(f"{plan.venv}: {e} (rm -rf {plan.venv})")
        home = os.path.dirname(plan.venv)  # ~/.local/share/hal9000, once it is empty
        if os.path.basename(home) == "hal9000" and os.path.isdir(home) and not os.listdir(home):
            os.rmdir(home)
    return failed


def _remove_parent(engine: HostEngine, name: str, say: Callable[[str], None]) -> None:
    """Stop it (its ordered shutdown stops the workers), then remove it."""
    c = engine.container(name, f"looking up {name}")
    if c is None:
        return
    if c.status in (PARENT_RUNNING, PARENT_RESTARTING):
        say(f"stopping {name} (its workers first; up to {STOP_TIMEOUT} s)")
        try:
            c.stop(STOP_TIMEOUT, f"stopping {name}")
        except HalError as e:
            say(f"{name} did not stop ({e.message}): removing it anyway")
    c.remove(force=True, what=f"removing {name}")
