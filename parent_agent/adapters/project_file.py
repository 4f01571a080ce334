"""A project's `.hal9000.toml` as the parent reads it, and the user's trust in it.

The file lies in the project, which its worker writes: it is read like every other
worker-writable file (`untrusted`: no link followed, no FIFO opened, bounded size). What it
may change and what needs trust is `hal_common.project_config`'s to say; this module finds
the file, reads it, and keeps the trust records: one file per repository in the data volume
(`ParentLayout.trust_dir`, which no worker mounts), holding the repository's path and the
sha256 of the content the user trusted, direnv-style (a changed file needs trusting again).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from hal_common.config import Config
from hal_common.errors import ConfigError, UsageError
from hal_common.layout import ParentLayout
from hal_common.project_config import (
    HINT,
    MAX_BYTES,
    PROJECT_FILE,
    Overlay,
    ProjectFile,
    merge,
    parse_project,
)
from hal_io.project_files import repo_root
from parent_agent.adapters import untrusted

log = logging.getLogger(__name__)

TASKS_DIR = "/.hal9000/tasks/"  # task worktrees: `<repo>/.hal9000/tasks/<name>`


def root_of(project: str, layout: ParentLayout) -> str:
    """The repository root whose `.hal9000.toml` applies to `project` (`repo_root`)."""
    return repo_root(project, layout.roots)


def trust_key(root: str) -> str:
    """Whose trust a repository's file takes: a task worktree's, its repository's (the same
    content trusted there is trusted in its tasks)."""
    head, sep, _ = root.partition(TASKS_DIR)
    return head if sep else root


def read(root: str) -> ProjectFile | None:
    """`root/.hal9000.toml`, parsed; None when there is none. ConfigError when it is bad,
    or is not a plain file (a link, a FIFO, too big): the spawn is refused, nothing lost."""
    source = os.path.join(root, PROJECT_FILE)
    try:
        data = untrusted.read_file(Path(root), PROJECT_FILE, MAX_BYTES)
    except untrusted.Refused as e:
        raise ConfigError(
            f"{source}: not read: {e.why} (a project file must be a plain file of at most "
            f"{MAX_BYTES // 1024} KiB)",
            hint=HINT,
            source=source,
        ) from None
    except OSError as e:
        raise ConfigError(f"{source}: cannot read it: {e.strerror or e}", source=source) from None
    if data is None:
        return None
    return parse_project(data, source)


def _record(layout: ParentLayout, root: str) -> Path:
    key = trust_key(root)
    return layout.trust_dir / hashlib.sha256(key.encode()).hexdigest()[:32]


def trusted_hash(layout: ParentLayout, root: str) -> str | None:
    """The sha256 the user trusted for `root`'s file, or None."""
    try:
        text = _record(layout, root).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    path, _, digest = text.strip().partition("\n")
    return digest.strip() if path == trust_key(root) else None


def trust(layout: ParentLayout, root: str, digest: str) -> Path:
    """Record `digest` as the trusted content of `root`'s file (atomic write, root's 0600)."""
    layout.trust_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _record(layout, root)
    fd, tmp = tempfile.mkstemp(prefix=".trust.", dir=layout.trust_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{trust_key(root)}\n{digest}\n")
    os.replace(tmp, path)
    return path


def forget(layout: ParentLayout, root: str) -> bool:
    try:
        _record(layout, root).unlink()
    except FileNotFoundError:
        return False
    return True


def load(cfg: Config, project: str, layout: ParentLayout) -> tuple[Config, Overlay]:
    """The config `project`'s worker gets: the user's, with its repository's project file
    over it (see `project_config.merge`). ConfigError (a bad file) or Untrusted (widening,
    not trusted): nothing is created."""
    root = root_of(project, layout)
    pf = read(root)
    if pf is None:
        return cfg, Overlay()
    return merge(cfg, pf, root, trusted_hash(layout, root))


# --- a user Dockerfile's build context --------------------------------------------------------

CONTEXT_MAX_BYTES = 32 << 20
CONTEXT_MAX_FILES = 2000
_SKIP = frozenset({".git", ".hal9000", "node_modules"})


def build_context(root: str, dockerfile: str) -> tuple[bytes, str]:
    """The Dockerfile's directory as a build context (a tar, with the Dockerfile as
    `Dockerfile`) and its content hash. Read like any worker-writable tree: links, FIFOs and
    devices are left out (logged), `.git`, `.hal9000` and `node_modules` too; over
    `CONTEXT_MAX_FILES` files or `CONTEXT_MAX_BYTES` is refused (UsageError)."""
    rel = PurePosixPath(dockerfile)
    folder = rel.parent
    files: dict[str, bytes] = {}
    total = 0
    with untrusted.directory(Path(root), "" if str(folder) == "." else folder) as top:
        name = rel.name
        data = untrusted.read(top, name, CONTEXT_MAX_BYTES)
        if data is None:
            raise UsageError(
                f"{root}/{dockerfile}: no such file ([worker].dockerfile in {PROJECT_FILE})"
            )
        files["Dockerfile"] = data
        stack: list[tuple[int, str]] = [(os.dup(top), "")]
        try:
            while stack:
                fd, prefix = stack.pop()
                try:
                    for entry in sorted(os.scandir(fd), key=lambda e: e.name):
                        path = f"{prefix}{entry.name}"
                        st = entry.stat(follow_symlinks=False)
                        if entry.name in _SKIP or path == name:
                            continue
                        if stat.S_ISDIR(st.st_mode):
                            stack.append((untrusted.open_dir(fd, entry.name), f"{path}/"))
                        elif stat.S_ISREG(st.st_mode):
                            body = untrusted.read(fd, entry.name, CONTEXT_MAX_BYTES - total)
                            if body is None:
                                continue
                            total += len(body)
                            files[path] = body
                        else:
                            log.info("build context: %s left out (not a file)", path)
                        if len(files) > CONTEXT_MAX_FILES:
                            raise untrusted.Refused(path, "too many files")
                finally:
                    os.close(fd)
        except untrusted.Refused as e:
            raise UsageError(
                f"{root}/{folder}: the Dockerfile's folder is its build context, and {e}",
                hint=f"put the Dockerfile in a folder of its own, with only what it copies in "
                f"(at most {CONTEXT_MAX_FILES} files, {CONTEXT_MAX_BYTES >> 20} MiB)",
            ) from None
        finally:
            for fd, _ in stack:
                os.close(fd)
    digest = hashlib.sha256()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, body in sorted(files.items()):
            digest.update(path.encode() + b"\0" + hashlib.sha256(body).digest())
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(body), 0o644
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue(), digest.hexdigest()
