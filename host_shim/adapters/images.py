"""Building images with progress, the offline base, and moving images into the parent."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.utils.socket import frames_iter
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
from hal_common.errors import HalError
from hal_io.engine import run_in, translated
from host_shim.core.build_context import (
    OFFLINE_BASE,
    SOURCE_LABEL,
    Recipe,
    context_dir,
    recipes,
    source_hash,
)

log = logging.getLogger(__name__)

DEBIAN_MIRROR = "http://deb.debian.org/debian"


def current(client: docker.DockerClient, recipe: Recipe) -> bool:
    """The image exists and was built from this checkout's sources."""
    with translated(f"looking up image {recipe.tag}"):
        try:
            image = client.images.get(recipe.tag)
        except docker.errors.ImageNotFound:
            return False
    built_from = (image.labels or {}).get(SOURCE_LABEL)
    return built_from == source_hash(context_dir(), recipe)


def have_image(client: docker.DockerClient, tag: str) -> bool:
    with translated(f"looking up image {tag}"):
        try:
            client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False


def ensure_base(client: docker.DockerClient, base: str, console: Console) -> str:
    """A base image that exists locally: `base`, pulled if possible, else built offline."""
    if have_image(client, base):
        return base
    if have_image(client, OFFLINE_BASE):
        return OFFLINE_BASE
    if not os.environ.get("HAL9000_OFFLINE"):
        console.print(f"[bold]pulling[/] {base} …")
        try:
            client.images.pull(base)
            return base
        except docker.errors.APIError as e:
            console.print(f"[yellow]no registry answered for {base}[/] ({e.explanation})")
    build_offline_base(client, console)
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
    for rel in ("var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info",
                "usr/share/locale", "var/log"):  # fmt: skip
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


def build_offline_base(client: docker.DockerClient, console: Console) -> None:
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
            with translated("importing the base image"):
                client.api.import_image(src=tar.stdout, repository=repo, tag=tag, stream_src=True)
            if tar.wait() != 0:
                raise HalError("tar of the debootstrap tree failed")
    console.print(f"[green]built[/] {OFFLINE_BASE} from Debian packages")


def build(
    client: docker.DockerClient, recipe: Recipe, base: str, console: Console, nocache: bool = False
) -> str:
    """Build one image, showing each step; returns its id."""
    ctx = context_dir()
    console.print(f"[bold]building[/] {recipe.tag} ({recipe.dockerfile}"
                  f"{', ' + recipe.target if recipe.target else ''}) on {base}")  # fmt: skip
    last: list[str] = []
    with console.status(f"{recipe.tag}: starting") as status, translated(f"building {recipe.tag}"):
        stream = client.api.build(
            path=str(ctx), dockerfile=recipe.dockerfile, tag=recipe.tag, target=recipe.target,
            buildargs={"BASE_IMAGE": base}, network_mode="host", rm=True, forcerm=True,
            decode=True, nocache=nocache, labels={SOURCE_LABEL: source_hash(ctx, recipe)},
        )  # fmt: skip
        for chunk in stream:
            if "error" in chunk:
                tail = "\n".join(last[-15:])
                raise HalError(f"building {recipe.tag} failed: {chunk['error']}\n{tail}")
            text = str(chunk.get("stream", "")).rstrip()
            if not text:
                continue
            last.extend(text.splitlines())
            if text.startswith("Step "):
                step = " ".join(text.split())
                console.print(f"  [dim]{step}[/]", no_wrap=True, overflow="ellipsis", markup=True)
                status.update(f"{recipe.tag}: {step[:60]}")
    with translated(f"inspecting {recipe.tag}"):
        image = client.images.get(recipe.tag)
    console.print(f"[green]built[/] {recipe.tag} ({image.attrs['Size'] / 1e6:.0f} MB)")
    return str(image.id)


def ensure_images(
    client: docker.DockerClient, cfg: Config, console: Console, force: bool = False,
    nocache: bool = False,
) -> None:  # fmt: skip
    """Build whichever of our images is missing or was built from other sources (an older
    checkout); all of them with `force`. Unchanged layers come from the cache."""
    todo = [r for r in recipes(cfg) if force or not current(client, r)]
    if not todo:
        return
    base = ensure_base(client, cfg.parent.base_image, console)
    for recipe in todo:
        build(client, recipe, base, console, nocache=nocache)
    missing = [cfg.worker.image] if not have_image(client, cfg.worker.image) else []
    if missing:
        raise HalError(
            f"worker image {missing[0]} is missing and is not one claudy builds",
            hint="build it yourself, or set [worker].image to hal9000/worker:minimal",
        )


def exec_with_stdin(
    client: docker.DockerClient, container: Container, argv: list[str], data: Iterable[bytes]
) -> tuple[int, str]:
    """Run argv in the container with `data` streamed to its stdin; (exit code, output).

    This is how bytes reach the parent: never env, argv or `docker cp`.
    """
    api = client.api
    with translated(f"running {argv[0]} in {container.name}"):
        ex = api.exec_create(container.id, argv, stdin=True, stdout=True, stderr=True)
        sock = api.exec_start(ex["Id"], socket=True)
        raw: socket.socket = sock._sock  # type: ignore[union-attr]  # the hijacked stream's socket
        try:
            for chunk in data:
                raw.sendall(chunk)
            raw.shutdown(socket.SHUT_WR)
            frames = frames_iter(sock, tty=False)  # type: ignore[no-untyped-call]
            out = b"".join(data for _stream, data in frames)
        finally:
            sock.close()
        code = api.exec_inspect(ex["Id"])["ExitCode"]
    return int(code if code is not None else 1), out.decode(errors="replace")


def _counted(chunks: Iterator[bytes], progress: Progress, task: int) -> Iterator[bytes]:
    for chunk in chunks:
        progress.advance(task, len(chunk))  # type: ignore[arg-type]
        yield chunk


def inner_image_id(container: Container, image: str) -> str | None:
    # the docker CLI in the parent (DOCKER_HOST points at the inner engine): no Python start-up
    argv = ["docker", "image", "inspect", "-f", "{{.Id}}", image]
    code, out = run_in(container, argv, "asking for the worker image")
    return out.strip() if code == 0 else None


def ensure_inner_image(
    client: docker.DockerClient, parent: Container, image: str, console: Console
) -> str:
    """The worker image in the parent's engine, with the host's id; returns that id."""
    with translated(f"inspecting {image}"):
        img = client.images.get(image)
    if inner_image_id(parent, image) == img.id:
        return str(img.id)
    size = int(img.attrs.get("Size", 0))
    with Progress(
        TextColumn(f"loading {image} into the parent"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeElapsedColumn(), console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("load", total=size or None)
        with translated(f"saving {image}"):
            chunks = _counted(iter(img.save(chunk_size=1 << 20, named=True)), progress, task)
            code, out = exec_with_stdin(client, parent, ["hal-agent", "load-image"], chunks)
        progress.update(task, completed=size)
    if code != 0:
        raise HalError(f"loading {image} into the parent failed: {out.strip()}")
    return str(img.id)
