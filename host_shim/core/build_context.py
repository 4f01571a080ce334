"""Where the Dockerfiles are, and which image each of our tags is built from."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hal_common.config import Config
from hal_common.errors import HalError
from hal_common.shared_services import SERVICES_IMAGE, images

OFFLINE_BASE = "hal9000/base:bookworm"


SOURCE_LABEL = "dev.hal9000.source"  # hash of the files an image was built from

# What each Dockerfile copies in (README.md only feeds pip's metadata: not a reason to rebuild).
INPUTS = {
    "Dockerfile.worker": ("Dockerfile.worker", "images/hal-worker", "images/worker-tmux.conf"),
    "Dockerfile.services": ("Dockerfile.services", "images/hal-service", "images/hal-chroma-mcp"),
    "Dockerfile.parent": ("Dockerfile.parent", "pyproject.toml", "hal_common", "hal_io",
                          "parent_agent", "host_shim"),
}  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    tag: str
    dockerfile: str
    target: str | None


def source_hash(ctx: Path, recipe: Recipe) -> str:
    """A hash of the files `recipe` builds from, and its target: an image whose label differs
    was built from other sources (an older checkout) and is rebuilt."""
    digest = hashlib.sha256(f"{recipe.dockerfile}:{recipe.target}".encode())
    for top in INPUTS[recipe.dockerfile]:
        path = ctx / top
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            digest.update(str(f.relative_to(ctx)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def context_dir(env: Mapping[str, str]) -> Path:
    """The source tree holding Dockerfile.parent (a clone; HAL9000_SRC overrides)."""
    here = Path(env["HAL9000_SRC"]) if env.get("HAL9000_SRC") else Path(__file__).parents[2]
    if not (here / "Dockerfile.parent").is_file():
        raise HalError(
            f"cannot find Dockerfile.parent in {here}",
            hint="install claudy from a clone of hal-9000 (./install.sh), "
            "or set HAL9000_SRC to the clone",
        )
    return here


def recipes(cfg: Config) -> list[Recipe]:
    """The images claudy builds: the worker image in use and the parent."""
    out = []
    worker = cfg.worker.image
    if worker.startswith("hal9000/worker:"):
        target = "standard" if worker.endswith(":standard") else "minimal"
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
