"""`claudy uninstall` (pure): what hal-9000 made, and the plan of what to remove.

What there is comes in as a `Found` (the engine's parents, images and volumes, the host's
directories that exist, install.sh's manifest); `plan` picks what the flags ask for, and
`describe` lists it for the question. The adapter (`adapters/uninstall.py`) acts on a plan.

install.sh's manifest (`$VENV/hal9000-install.txt`) has one line per thing it made,
`KIND<TAB>PATH[<TAB>TEXT]`:

    venv        the venv claudy runs from (removed last: it is the running program)
    uv          the venv install.sh put uv in (where the system Python was too old)
    link        ~/.local/bin/claudy, a link into the venv
    completion  the bash completion file
    profile     a file (~/.profile) and the line install.sh added to it
    group       the engine's group the user was added to (kept: other tools may need it)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MANIFEST_NAME = "hal9000-install.txt"
KINDS = ("venv", "uv", "link", "completion", "profile", "group")


@dataclass(frozen=True)
class Entry:
    kind: str
    path: str
    text: str = ""


def parse_manifest(text: str) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    """The manifest's entries, and a warning for each line that is not one (kept out)."""
    entries: list[Entry] = []
    warnings: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        kind, rest = parts[0], parts[1:]
        if kind not in KINDS or not rest or not rest[0]:
            warnings.append(f"manifest line {n} is not KIND<TAB>PATH: {line!r} (skipped)")
            continue
        path = rest[0] if kind == "group" else os.path.normpath(rest[0])
        if kind != "group" and not os.path.isabs(path):
            warnings.append(f"manifest line {n}: {path!r} is not an absolute path (skipped)")
            continue
        entries.append(Entry(kind, path, "\t".join(rest[1:])))
    return tuple(dict.fromkeys(entries)), tuple(warnings)


@dataclass(frozen=True)
class Found:
    """What hal-9000 made that is there now."""

    parents: tuple[str, ...] = ()  # container names, labelled as parents
    images: tuple[str, ...] = ()  # tags (or ids) of the images claudy built
    volumes: tuple[str, ...] = ()  # the parents' volumes that exist
    config_dir: str | None = None  # hal-9000's config directory, when it exists
    data_dirs: tuple[str, ...] = ()  # caches and state that exist (hints, Claude Code, logs)
    manifest: tuple[Entry, ...] = ()
    manifest_path: str | None = None  # where the manifest was read (in the venv it lists)


@dataclass(frozen=True)
class Plan:
    parents: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # files and directories, removed in this order
    links: tuple[tuple[str, str], ...] = ()  # (link, the venv it must point into)
    profile_lines: tuple[tuple[str, str], ...] = ()  # (file, exact line)
    venv: str | None = None  # removed last
    kept: tuple[str, ...] = field(default=())  # what stays, said after the list

    def empty(self) -> bool:
        return not (
            self.parents
            or self.images
            or self.volumes
            or self.paths
            or self.links
            or self.profile_lines
            or self.venv
        )


def plan(found: Found, images: bool, volumes: bool, config: bool) -> Plan:
    """What to remove: the parents, caches, state and what install.sh made always; images,
    volumes and the config directory when asked. The manifest's venv only when it is the
    directory the manifest was read from (a manifest names no one else's files)."""
    kept: list[str] = []
    paths = list(found.data_dirs)
    if config and found.config_dir:
        paths.append(found.config_dir)
    elif found.config_dir:
        kept.append(f"the config directory {found.config_dir} (--config removes it)")
    if found.images and not images:
        kept.append(f"{len(found.images)} image(s) (--images removes them)")
    if found.volumes and not volumes:
        kept.append(
            f"{len(found.volumes)} volume(s): the Claude home, data, inner images "
            "(--volumes removes them)"
        )
    home = os.path.dirname(found.manifest_path) if found.manifest_path else None
    venv = None
    links: list[tuple[str, str]] = []
    profile: list[tuple[str, str]] = []
    for e in found.manifest:
        if e.kind == "venv":
            if e.path == home:
                venv = e.path
            else:
                kept.append(f"{e.path}: the manifest is not in it (remove it yourself)")
        elif e.kind in ("uv", "completion"):
            paths.append(e.path)
        elif e.kind == "link" and home:
            links.append((e.path, home))
        elif e.kind == "profile" and e.text:
            profile.append((e.path, e.text))
        elif e.kind == "group":
            kept.append(f"your membership of group {e.path} (sudo gpasswd -d $USER {e.path})")
    return Plan(
        parents=found.parents,
        images=found.images if images else (),
        volumes=found.volumes if volumes else (),
        paths=tuple(dict.fromkeys(paths)),
        links=tuple(links),
        profile_lines=tuple(profile),
        venv=venv,
        kept=tuple(kept),
    )


def describe(p: Plan) -> list[str]:
    """The plan as the lines of the list shown before the question."""
    out = [f"  container  {name} (the parent, and the workers in it)" for name in p.parents]
    out += [f"  image      {ref}" for ref in p.images]
    out += [f"  volume     {name}" for name in p.volumes]
    out += [f"  files      {path}" for path in p.paths]
    out += [f"  link       {link}" for link, _ in p.links]
    out += [f"  line       {line!r} in {path}" for path, line in p.profile_lines]
    if p.venv:
        out.append(f"  venv       {p.venv} (claudy itself, last)")
    return out
