"""A build's context staged in a temporary folder: the Dockerfile and the files it copies in,
and for the parent a wheel of the project's packages. Small (the legacy builder uploads the
whole context), and the same from a clone as from a wheel install."""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from host_shim.core.build_context import PARENT, Context, Project

EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest time: the wheel's bytes follow its files only
# hal-agent's launcher in the parent (bin/hal-agent, which says why it is not an entry
# point): pip points its `#!python` at the venv's interpreter as it installs the wheel
AGENT_LAUNCHER = b"#!python\nfrom parent_agent.commands.quick import main\n\nmain()\n"


@contextmanager
def staged(ctx: Context, dockerfile: str) -> Iterator[Path]:
    """A temporary folder holding what `dockerfile`'s build needs; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="hal9000-context-") as tmp:
        root = Path(tmp)
        for name, f in ctx.files(dockerfile).items():
            shutil.copyfile(f, root / name)
        if dockerfile == PARENT:
            write_wheel(ctx, root)
        yield root


def wheel_name(project: Project) -> str:
    return f"hal_9000-{project.version}-py3-none-any.whl"


def write_wheel(ctx: Context, folder: Path) -> Path:
    """A wheel of the project's packages as they are installed here, with the distribution's
    metadata (version, dependencies, scripts): pip installs it without a build backend."""
    project = ctx.project
    info = f"hal_9000-{project.version}.dist-info"
    meta = [
        "Metadata-Version: 2.1",
        "Name: hal-9000",
        f"Version: {project.version}",
        *([f"Requires-Python: {project.requires_python}"] if project.requires_python else []),
        *(f"Requires-Dist: {r}" for r in project.requires),
    ]
    scripts = ["[console_scripts]", *(f"{name} = {target}" for name, target in project.scripts)]
    wheel = [
        "Wheel-Version: 1.0",
        "Generator: claudy",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]
    members: dict[str, bytes] = {name: f.read_bytes() for name, f in ctx.package_files().items()}
    members[f"{info}/METADATA"] = "\n".join(meta).encode() + b"\n"
    members[f"{info}/WHEEL"] = "\n".join(wheel).encode() + b"\n"
    members[f"{info}/entry_points.txt"] = "\n".join(scripts).encode() + b"\n"
    launcher = f"hal_9000-{project.version}.data/scripts/hal-agent"
    members[launcher] = AGENT_LAUNCHER
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in members.items()]
    members[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]).encode() + b"\n"
    path = folder / wheel_name(project)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            entry = zipfile.ZipInfo(name, EPOCH)
            entry.external_attr = (
                0o100755 if name == launcher else 0o644
            ) << 16  # pip: a regular file
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    return path


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
