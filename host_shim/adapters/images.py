"""Building images with progress, the offline base, and moving images into the parent."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from hal_common.config import Config
from hal_common.errors import EngineUnavailable, HalError
from host_shim.adapters.engine import HostEngine, ImageInfo
from host_shim.adapters.parent_client import ParentClient
from host_shim.adapters.staging import staged
from host_shim.core.build_context import (
    OFFLINE_BASE,
    SOURCE_LABEL,
    Recipe,
    find_context,
    recipes,
    source_hash,
    standalone_stages,
)

log = logging.getLogger(__name__)

DEBIAN_MIRROR = "http://deb.debian.org/debian"


def current(engine: HostEngine, recipe: Recipe) -> bool:
    """The image exists and was built from this install's sources."""
    image = engine.image(recipe.tag)
    if image is None:
        return False
    return image.labels.get(SOURCE_LABEL) == source_hash(find_context(), recipe)


def ensure_base(engine: HostEngine, base: str, console: Console, env: Mapping[str, str]) -> str:
    """A base image that exists locally: `base`, pulled if possible, else built offline."""
    if engine.has_image(base):
        return base
    if engine.has_image(OFFLINE_BASE):
        return OFFLINE_BASE
    if not env.get("HAL9000_OFFLINE"):
        console.print(f"[bold]pulling[/] {base} …")
        try:
            engine.pull(base)
            return base
        except EngineUnavailable:
            raise
        except HalError as e:
            console.print(f"[yellow]no registry answered for {base}[/] ({e.message})")
    build_offline_base(engine, console)
    return OFFLINE_BASE


DEBIAN_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")


def slim_rootfs(rootfs: Path) -> None:
    """Make a debootstrap tree a base image: apt sources, the host's extra CAs, no caches.

    The host's local CA certificates (a company's TLS proxy, say) go in so that builds on
    this base reach PyPI and npm the way the host does; ca-certificates picks them up when
    the images install it.
    """
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(DEBIAN_SOURCES)
    if HOST_CA_DIR.is_dir():
        shutil.copytree(HOST_CA_DIR, rootfs / HOST_CA_DIR.relative_to("/"), dirs_exist_ok=True)
    for rel in ("etc/resolv.conf", "etc/hostname"):
        (rootfs / rel).unlink(missing_ok=True)
    for rel in (
        "var/lib/apt/lists",
        "var/cache/apt",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/log",
    ):
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for doc in (rootfs / "usr/share/doc").glob("*/*"):
        if doc.name != "copyright":
            shutil.rmtree(doc) if doc.is_dir() and not doc.is_symlink() else doc.unlink()


def build_offline_base(engine: HostEngine, console: Console) -> None:
    """debootstrap a minimal Debian and import it: a base without any image registry."""
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise HalError(
            "no base image, no registry, and no way to build one here",
            hint="as root with debootstrap installed run `sudo claudy build` "
            "(apt-get install debootstrap), or `docker pull debian:bookworm-slim` when online",
        )
    with tempfile.TemporaryDirectory(prefix="hal9000-rootfs-") as tmp:
        rootfs = Path(tmp)
        argv = ["debootstrap", "--variant=minbase", "bookworm", tmp, DEBIAN_MIRROR]
        with console.status("debootstrap bookworm (about 30 s) …") as status:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            lines: list[str] = []
            for raw in proc.stdout or ():
                line = raw.decode(errors="replace").rstrip()
                lines.append(line)
                status.update(f"debootstrap: {line[:70]}")
            if proc.wait() != 0:
                raise HalError("debootstrap failed:\n" + "\n".join(lines[-15:]))
        slim_rootfs(rootfs)
        with console.status("importing the base image …"):
            tar = subprocess.Popen(
                ["tar", "-C", tmp, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
            )
            repo, tag = OFFLINE_BASE.split(":")
            if tar.stdout is not None:
                engine.import_image(tar.stdout, repo, tag, "importing the base image")
            if tar.wait() != 0:
                raise HalError("tar of the debootstrap tree failed")
    console.print(f"[green]built[/] {OFFLINE_BASE} from Debian packages")


def _build_one(
    engine: HostEngine,
    recipe: Recipe,
    base: str,
    nocache: bool,
    on_step: Callable[[str], None],
) -> ImageInfo:
    """Build one image from its staged context; `on_step` hears each `Step N/M` line.
    Returns the image.

    A Dockerfile (built whole: no target) with two or more stages that stand alone has them
    built first, side by side, each from a Dockerfile of its own (see
    `build_context.standalone_stages`); the whole build then finds their steps in the cache."""
    ctx = find_context()
    args = {"BASE_IMAGE": base}
    labels = {SOURCE_LABEL: source_hash(ctx, recipe)}
    with staged(ctx, recipe.dockerfile) as root:
        stages = standalone_stages((root / recipe.dockerfile).read_text())
        if recipe.target is None and len(stages) >= 2:
            files = {}
            for name, text in stages.items():
                files[name] = f"{recipe.dockerfile}.{name}"
                (root / files[name]).write_text(text)
            with ThreadPoolExecutor(len(files)) as pool:
                futures = [
                    pool.submit(
                        _steps, engine, root, f, None, f"{recipe.tag} ({name})", args, {},
                        nocache, _prefixed(name, on_step),
                    )
                    for name, f in files.items()
                ]  # fmt: skip
                errors = [e for f in futures if (e := f.exception()) is not None]
            if errors:
                raise errors[0]
        _steps(engine, root, recipe.dockerfile, recipe.tag, recipe.tag, args, labels, nocache,
               on_step, recipe.target)  # fmt: skip
    return engine.require_image(recipe.tag, f"inspecting {recipe.tag}")


def _prefixed(prefix: str, on_step: Callable[[str], None]) -> Callable[[str], None]:
    return lambda text: on_step(f"{prefix}: {text}")


def _steps(
    engine: HostEngine,
    ctx: Path,
    dockerfile: str,
    tag: str | None,
    what: str,
    args: dict[str, str],
    labels: dict[str, str],
    nocache: bool,
    on_step: Callable[[str], None],
    target: str | None = None,
) -> None:
    """One legacy build, its `Step` lines to `on_step`; HalError with the output's tail."""
    last: list[str] = []
    for line in engine.build(str(ctx), dockerfile, tag, target, args, labels, nocache):
        if line.error:
            tail = "\n".join(last[-15:])
            raise HalError(f"building {what} failed: {line.error}\n{tail}")
        text = line.text.rstrip()
        if not text:
            continue
        last.extend(text.splitlines())
        if text.startswith("Step "):
            on_step(" ".join(text.split()))


def _announce(console: Console, recipe: Recipe, base: str) -> None:
    console.print(
        f"[bold]building[/] {recipe.tag} ({recipe.dockerfile}"
        f"{', ' + recipe.target if recipe.target else ''}) on {base}"
    )


def build(
    engine: HostEngine,
    recipe: Recipe,
    base: str,
    console: Console,
    nocache: bool = False,
) -> str:
    """Build one image, showing each step; returns its id."""
    _announce(console, recipe, base)
    with console.status(f"{recipe.tag}: starting") as status:

        def step(text: str) -> None:
            console.print(f"  [dim]{text}[/]", no_wrap=True, overflow="ellipsis", markup=True)
            status.update(f"{recipe.tag}: {text[:60]}")

        image = _build_one(engine, recipe, base, nocache, step)
    console.print(f"[green]built[/] {recipe.tag} ({image.size / 1e6:.0f} MB)")
    return image.id


def build_together(
    engine: HostEngine,
    todo: list[Recipe],
    base: str,
    console: Console,
    nocache: bool = False,
) -> None:
    """Build `todo` at the same time (the legacy builder runs one build's steps in order, but
    two builds side by side: their downloads and unpacking overlap). One status line shows
    each build's step; each finished image is said as it comes. The first failure is raised
    once every build has ended."""
    if len(todo) <= 1:
        for recipe in todo:
            build(engine, recipe, base, console, nocache)
        return
    for recipe in todo:
        _announce(console, recipe, base)
    steps = {r.tag: "starting" for r in todo}
    lock = threading.Lock()
    with console.status("building") as status, ThreadPoolExecutor(len(todo)) as pool:

        def show() -> None:
            status.update("  ·  ".join(f"{t.split('/')[-1]}: {s[:40]}" for t, s in steps.items()))

        def one(recipe: Recipe) -> ImageInfo:
            def step(text: str) -> None:
                with lock:
                    steps[recipe.tag] = text
                    show()

            image = _build_one(engine, recipe, base, nocache, step)
            with lock:
                steps.pop(recipe.tag, None)
                console.print(f"[green]built[/] {recipe.tag} ({image.size / 1e6:.0f} MB)")
                show()
            return image

        futures = [pool.submit(one, r) for r in todo]
        errors = [e for f in futures if (e := f.exception()) is not None]
    if errors:
        raise errors[0]


def ensure_images(
    engine: HostEngine,
    cfg: Config,
    console: Console,
    env: Mapping[str, str],
    force: bool = False,
    nocache: bool = False,
    defer: frozenset[str] = frozenset(),
    only: frozenset[str] = frozenset(),
) -> list[Recipe]:
    """Build whichever of our images is missing or was built from other sources (an older
    install); all of them with `force`. Unchanged layers come from the cache. Those whose
    tag is in `defer` are not built: they are returned (the services image, built in the
    background); with `only`, only those tags are looked at. The others are built side by
    side."""
    todo = [r for r in recipes(cfg) if (not only or r.tag in only)]
    todo = [r for r in todo if force or not current(engine, r)]
    later = [r for r in todo if r.tag in defer]
    now = [r for r in todo if r.tag not in defer]
    if now:
        base = ensure_base(engine, cfg.parent.base_image, console, env)
        build_together(engine, now, base, console, nocache=nocache)
    missing = [cfg.worker.image] if not engine.has_image(cfg.worker.image) else []
    if missing:
        raise HalError(
            f"worker image {missing[0]} is missing and is not one claudy builds",
            hint="build it yourself, or set [worker].image to hal9000/worker:minimal",
        )
    return later


def _counted(chunks: Iterator[bytes], progress: Progress, task: int) -> Iterator[bytes]:
    for chunk in chunks:
        progress.advance(task, len(chunk))  # type: ignore[arg-type]
        yield chunk


def inner_current(engine: HostEngine, parent: ParentClient, image: str) -> bool:
    """The parent's engine holds `image` as the host has it."""
    img = engine.image(image, f"inspecting {image}")
    return img is not None and parent.inner_image_id(image) == img.id


def ensure_inner_image(
    engine: HostEngine, parent: ParentClient, image: str, console: Console
) -> str:
    """The worker image in the parent's engine, with the host's id; returns that id."""
    img = engine.require_image(image, f"inspecting {image}")
    if parent.inner_image_id(image) == img.id:
        return img.id
    with Progress(
        TextColumn(f"loading {image} into the parent"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("load", total=img.size or None)
        parent.load_image(image, _counted(engine.save(image), progress, task))
        progress.update(task, completed=img.size)
    return img.id
