"""Where the Dockerfiles are, and which image each of our tags is built from."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hal_common.config import Config
from hal_common.errors import HalError

OFFLINE_BASE = "hal9000/base:bookworm"


@dataclass(frozen=True)
class Recipe:
    tag: str
    dockerfile: str
    target: str | None


def context_dir(environ: dict[str, str] | None = None) -> Path:
    """The source tree holding Dockerfile.parent (a clone; HAL9000_SRC overrides)."""
    env = dict(os.environ) if environ is None else environ
    here = Path(env["HAL9000_SRC"]) if env.get("HAL9000_SRC") else Path(__file__).parents[1]
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
    return out
