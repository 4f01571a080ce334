"""Where the Dockerfiles are (package data, beside the packages), what each image is built
from, and which image each of our tags is built from."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from hal_common.config import Config
from hal_common.errors import HalError
from hal_common.project_config import PROFILES, WORKER_IMAGE
from hal_common.shared_services import SERVICES_IMAGE, images

OFFLINE_BASE = "hal9000/base:bookworm"


SOURCE_LABEL = "dev.hal9000.source"  # hash of the files an image was built from

DIST = "hal-9000"  # the distribution's name (pyproject's [project] name)
# The project's packages (pyproject's [tool.setuptools.packages.find]): the parent image
# installs a wheel of them.
PACKAGES = ("hal_common", "hal_io", "host_shim", "parent_agent")
IMAGES = "host_shim/images"  # the Dockerfiles and what they copy in: package data
PARENT = "Dockerfile.parent"
LOCK = "parent-requirements.lock"  # hal-agent's dependencies, pinned with hashes (scripts/lock)

# What each Dockerfile copies in from IMAGES besides itself (the parent also a wheel).
FILES = {
    "Dockerfile.worker": (
        "hal-worker",
        "worker-tmux.conf",
        "hal-connect",
        "ssh-hal9000.conf",
        "ssh_known_hosts",
    ),
    "Dockerfile.services": ("hal-service", "hal-chroma-mcp"),
    PARENT: (LOCK,),
}


@dataclass(frozen=True)
class Recipe:
    tag: str
    dockerfile: str
    target: str | None


@dataclass(frozen=True)
class Project:
    """The project as installed (its distribution's metadata): what the parent's wheel says."""

    version: str
    requires_python: str
    requires: tuple[str, ...]  # the runtime dependencies (no extras)
    scripts: tuple[tuple[str, str], ...]  # console scripts: (name, module:function)


@dataclass(frozen=True)
class Context:
    """Where the images are built from: the same whether claudy runs from a clone or from a
    wheel install (the packages sit side by side in either)."""

    root: Path  # the folder holding the project's packages: a clone, or site-packages
    project: Project

    @property
    def images(self) -> Path:
        return self.root / IMAGES

    def files(self, dockerfile: str) -> dict[str, Path]:
        """The files `dockerfile`'s build copies in from IMAGES, itself first: name -> file."""
        return {name: self.images / name for name in (dockerfile, *FILES[dockerfile])}

    def package_files(self) -> dict[str, Path]:
        """The project's package files as the parent's wheel holds them: path in the wheel ->
        file. No bytecode, and not IMAGES (the parent builds no image)."""
        out = {}
        for package in PACKAGES:
            for f in sorted((self.root / package).rglob("*")):
                rel = f.relative_to(self.root)
                if f.is_dir() or "__pycache__" in rel.parts or f.suffix == ".pyc":
                    continue
                if not rel.is_relative_to(IMAGES):
                    out[rel.as_posix()] = f
        return out

    def inputs(self, dockerfile: str) -> list[Path]:
        """The files and folders whose change changes `dockerfile`'s image (the quick entry
        stamps them)."""
        extra = [self.root / p for p in PACKAGES] if dockerfile == PARENT else []
        return [*self.files(dockerfile).values(), *extra]


def project_metadata() -> Project:
    """The installed distribution's metadata; a clear error where there is none."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise HalError(
            f"{DIST} is not installed in this Python ({sys.executable})",
            hint="install it: pip install hal-9000 (a wheel), or pip install -e . in a clone",
        ) from None
    requires = tuple(r for r in dist.requires or () if "extra ==" not in r)
    scripts = tuple(
        sorted((e.name, e.value) for e in dist.entry_points if e.group == "console_scripts")
    )
    return Project(dist.version, dist.metadata["Requires-Python"] or "", requires, scripts)


def find_context() -> Context:
    """The build context of the running claudy: its own packages' folder (package data)."""
    root = Path(__file__).resolve().parents[2]
    missing = [
        f"{IMAGES}/{name}"
        for dockerfile, names in FILES.items()
        for name in (dockerfile, *names)
        if not (root / IMAGES / name).is_file()
    ]
    if missing:
        raise HalError(
            f"cannot find {', '.join(missing)} in {root}",
            hint="this hal-9000 install lacks its package data: reinstall it "
            "(pipx install / uv tool install / pip install hal-9000, or ./install.sh in a clone)",
        )
    return Context(root, project_metadata())


def source_hash(ctx: Context, recipe: Recipe) -> str:
    """A hash of the files `recipe` builds from, and its target: an image whose label differs
    was built from other sources (an older install) and is rebuilt. The same files hash the
    same from a clone and from a wheel install."""
    digest = hashlib.sha256(f"{recipe.dockerfile}:{recipe.target}".encode())
    files = ctx.files(recipe.dockerfile)
    if recipe.dockerfile == PARENT:
        files |= ctx.package_files()
        digest.update(repr(ctx.project).encode())
    for name, f in sorted(files.items()):
        digest.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def recipes(cfg: Config) -> list[Recipe]:
    """The images claudy builds: the worker image in use and the parent."""
    out = []
    worker = cfg.worker.image
    if worker.startswith(f"{WORKER_IMAGE}:"):
        profile = worker.split(":", 1)[1]
        target = profile if profile in PROFILES else "minimal"
        out.append(Recipe(worker, "Dockerfile.worker", target))
    out.append(Recipe(cfg.parent.image, "Dockerfile.parent", None))
    if SERVICES_IMAGE in images(cfg.services):
        out.append(Recipe(SERVICES_IMAGE, "Dockerfile.services", None))
    return out


BASE_FROM = "${BASE_IMAGE}"
_FROM = re.compile(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)


def standalone_stages(dockerfile: str) -> dict[str, str]:
    """The stages of a Dockerfile's text that stand alone (FROM the base image argument, no
    `COPY --from`), each as a Dockerfile of its own: the global ARGs, then the stage as
    written. Its steps are the full build's, so building it fills the cache that the full
    build then hits: the legacy builder runs a Dockerfile's stages one after the other, but
    such stages, built apart, run side by side (BuildKit's parallel stages, by hand)."""
    lines = dockerfile.splitlines()
    starts = [i for i, ln in enumerate(lines) if _FROM.match(ln.strip())]
    if not starts:
        return {}
    prologue = lines[: starts[0]]
    out = {}
    for i, start in enumerate(starts):
        block = lines[start : starts[i + 1] if i + 1 < len(starts) else len(lines)]
        m = _FROM.match(lines[start].strip())
        assert m is not None  # noqa: S101 - matched above
        image, name = m.group(1), m.group(2)
        if name and image == BASE_FROM and not any("--from=" in ln for ln in block):
            out[name] = "\n".join([*prologue, *block]) + "\n"
    return out
