"""The host's Docker engine: the one host_shim module that speaks docker-py.

Everything claudy does with the host engine goes through `HostEngine` (images, volumes, the
engine's info) and `ContainerHandle` (the parent container: its state, start, stop, exec).
What they return are small values; every docker-py and transport error leaves here as a
HalError (through `hal_io.engine.translated`, the shared translation).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import docker
import docker.errors
import docker.models.containers
from docker.models.containers import Container
from docker.models.images import Image
from docker.utils.socket import frames_iter

from hal_common.engines import EngineChoice
from hal_common.errors import EngineUnavailable, HalError
from hal_io.engine import connect_choice, engine_url, run_in, run_split, translated
from host_shim.adapters import ssh_probe

REMOTE_HINT = (
    "check that the engine runs and that you may reach it (docker -H URL version); "
    "claudy --engine URL doctor says more"
)


@dataclass(frozen=True)
class ExecResult:
    code: int
    output: str  # stdout and stderr, as text
    stdout: str | None = None  # each stream alone, when the exec kept them apart
    stderr: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    id: str
    labels: Mapping[str, str]
    size: int  # bytes
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    driver: str
    cgroup_version: str
    runtimes: frozenset[str]
    arch: str = ""  # uname -m of the engine's machine (x86_64, aarch64)


@dataclass(frozen=True)
class BuildLine:
    """One line of a build's progress: text to show, or the error that ended it."""

    text: str = ""
    error: str = ""


def _image_info(img: Image) -> ImageInfo:
    size = int(img.attrs.get("Size") or 0)
    return ImageInfo(str(img.id), dict(img.labels or {}), size, tuple(img.tags or ()))


class ContainerHandle:
    """A container of the host engine (the parent), as it was when it was looked up."""

    def __init__(self, container: Container) -> None:
        self._c = container

    @property
    def name(self) -> str:
        return self._c.name or ""

    @property
    def id(self) -> str:
        return str(self._c.id)

    @property
    def status(self) -> str:
        return str(self._c.status)

    @property
    def labels(self) -> Mapping[str, str]:
        return dict(self._c.labels or {})

    @property
    def env(self) -> tuple[str, ...]:
        """Its environment as created (`KEY=VALUE`, the image's included)."""
        return tuple((self._c.attrs.get("Config") or {}).get("Env") or ())

    @property
    def image_id(self) -> str:
        """The id of the image it runs (`sha256:…`)."""
        return str(self._c.attrs.get("Image") or "")

    @property
    def volumes(self) -> tuple[str, ...]:
        """The names of the named volumes mounted in it."""
        mounts = self._c.attrs.get("Mounts") or []
        return tuple(str(m["Name"]) for m in mounts if m.get("Type") == "volume" and m.get("Name"))

    def start(self, what: str = "") -> None:
        with translated(what or f"starting {self.name}"):
            self._c.start()

    def stop(self, timeout: int, what: str = "") -> None:
        with translated(what or f"stopping {self.name}"):
            self._c.stop(timeout=timeout)

    def remove(self, force: bool = False, what: str = "") -> None:
        with translated(what or f"removing {self.name}"):
            self._c.remove(force=force)

    def logs_tail(self, lines: int, what: str = "") -> str:
        with translated(what or f"reading the log of {self.name}"):
            raw = self._c.logs(tail=lines)
        return raw.decode(errors="replace").strip()

    def exec(self, argv: list[str], what: str = "") -> ExecResult:
        """Run argv in it (no terminal): its exit code and output."""
        code, out = run_in(self._c, argv, what)
        return ExecResult(code, out)

    def exec_split(self, argv: list[str], what: str = "") -> ExecResult:
        """As `exec`, with the streams kept apart; `output` is stderr, then stdout."""
        code, out, err = run_split(self._c, argv, what)
        return ExecResult(code, err + out, stdout=out, stderr=err)

    def exec_with_stdin(self, argv: list[str], data: Iterable[bytes]) -> ExecResult:
        """Run argv with `data` streamed to its stdin: how bytes reach the parent, never env,
        argv or `docker cp`."""
        api = self._c.client.api  # type: ignore[union-attr]  # a container found by a client
        with translated(f"running {argv[0]} in {self.name}"):
            ex = api.exec_create(self._c.id, argv, stdin=True, stdout=True, stderr=True)
            sock = api.exec_start(ex["Id"], socket=True)
            # the hijacked stream's socket; over ssh, docker-py's SSHSocket itself (the ssh
            # process's pipes: stdin closed is the half-close that dial-stdio passes on)
            raw: socket.socket = getattr(sock, "_sock", sock)  # type: ignore[arg-type,assignment]  # docker-py: a union
            try:
                for chunk in data:
                    raw.sendall(chunk)
                proc = getattr(raw, "proc", None)
                if proc is not None and proc.stdin is not None:
                    proc.stdin.close()
                else:
                    raw.shutdown(socket.SHUT_WR)
                frames = frames_iter(sock, tty=False)  # type: ignore[no-untyped-call]
                out = b"".join(data for _stream, data in frames)
            finally:
                sock.close()
            code = api.exec_inspect(ex["Id"])["ExitCode"]
        return ExecResult(int(code if code is not None else 1), out.decode(errors="replace"))

    def exec_to_file(
        self, argv: list[str], out: IO[bytes], limit: int, timeout: float
    ) -> tuple[int, str, bool]:
        """Run argv, its stdout written to `out` (binary, at most `limit` bytes: past it the
        exec is left and `cut` is True), stderr kept as text (64 KiB); `timeout` seconds of
        silence end it. (exit code, stderr, cut)."""
        api = self._c.client.api  # type: ignore[union-attr]  # a container found by a client
        cut = False
        err = bytearray()
        with translated(f"running {argv[0]} in {self.name}"):
            ex = api.exec_create(self._c.id, argv, stdin=False, stdout=True, stderr=True)
            sock = api.exec_start(ex["Id"], socket=True)
            # the hijacked stream's socket; over ssh, docker-py's SSHSocket itself
            raw: socket.socket = getattr(sock, "_sock", sock)  # type: ignore[arg-type,assignment]  # docker-py: a union
            raw.settimeout(timeout)
            size = 0
            try:
                for stream, data in frames_iter(sock, tty=False):  # type: ignore[no-untyped-call]
                    if stream == 2:
                        err += data[: max((1 << 16) - len(err), 0)]
                        continue
                    size += len(data)
                    if size > limit:
                        cut = True
                        break
                    out.write(data)
            except TimeoutError:
                raise HalError(f"{argv[0]} in {self.name} said nothing for {timeout:g}s") from None
            finally:
                sock.close()
            code = None if cut else api.exec_inspect(ex["Id"])["ExitCode"]
        return int(code if code is not None else 1), err.decode(errors="replace"), cut


class HostEngine:
    """The host's engine, behind the calls claudy makes."""

    def __init__(self, client: docker.DockerClient, url: str = "") -> None:
        self._client = client
        self.url = url  # the engine's URL (for messages and the quick entry's hint)

    @classmethod
    def connect(
        cls, choice: EngineChoice, env: Mapping[str, str], hint: str, timeout: int = 60
    ) -> HostEngine:
        """The engine `choice` names, which must answer a ping. Over ssh, a failure says
        why (host key, authentication, no docker there) from one `ssh` probe."""
        url = engine_url(choice, env)
        what = "the Docker engine" if choice.origin == "default" else f"the engine {url}"
        try:
            client = connect_choice(choice, env, what, hint, timeout=timeout)
        except EngineUnavailable as e:
            if url.startswith("ssh://"):
                found = ssh_probe.diagnose(url, env)
                if found is not None:
                    raise EngineUnavailable(f"{what}: {found[0]}", hint=found[1]) from None
            raise EngineUnavailable(
                e.message, hint=hint if choice.origin == "default" else REMOTE_HINT
            ) from None
        return cls(client, url)

    def info(self, what: str = "") -> EngineInfo:
        with translated(what or "asking the engine"):
            info = self._client.info()
        return EngineInfo(
            server_version=str(info.get("ServerVersion")),
            driver=str(info.get("Driver")),
            cgroup_version=str(info.get("CgroupVersion", "1")),
            runtimes=frozenset((info.get("Runtimes") or {}).keys()),
            arch=str(info.get("Architecture") or ""),
        )

    # --- containers -----------------------------------------------------------------------

    def container(self, name: str, what: str = "") -> ContainerHandle | None:
        with translated(what or f"looking up {name}"):
            try:
                return ContainerHandle(self._client.containers.get(name))
            except docker.errors.NotFound:
                return None

    def containers(self, filters: Mapping[str, Any], what: str = "") -> list[ContainerHandle]:
        """The containers (running or not) that match docker-py `filters`."""
        with translated(what or "listing containers"):
            found = self._client.containers.list(
                all=True, filters=dict(filters), ignore_removed=True
            )
        return [ContainerHandle(c) for c in found]

    def run_container(self, kwargs: Mapping[str, Any], what: str = "") -> ContainerHandle:
        """Create and start a detached container from `client.containers.run` arguments, plus
        `stop_timeout` (the container's own `docker stop` timeout), which docker-py's `run`
        does not take: then it is created through the API with it, and started."""
        args = dict(kwargs)
        stop_timeout = args.pop("stop_timeout", None)
        with translated(what or f"starting {kwargs.get('name', 'a container')}"):
            if stop_timeout is None:
                found = self._client.containers.run(**args)
            else:
                # the create arguments `run` would build (docker-py's own helper), plus the
                # stop timeout, which `run` refuses
                build = docker.models.containers._create_container_args  # type: ignore[attr-defined]
                create = build(
                    {
                        **args,
                        "command": args.get("command"),
                        "version": self._client.api.api_version,
                    }
                )
                created = self._client.api.create_container(**create, stop_timeout=stop_timeout)
                found = self._client.containers.get(created["Id"])
                found.start()
        if not isinstance(found, Container):
            raise HalError(f"{kwargs.get('name')} did not start detached")
        return ContainerHandle(found)

    # --- images ---------------------------------------------------------------------------

    def image(self, ref: str, what: str = "") -> ImageInfo | None:
        """The image `ref` (a tag or an id), or None when the engine has none."""
        with translated(what or f"looking up image {ref}"):
            try:
                img = self._client.images.get(ref)
            except docker.errors.ImageNotFound:
                return None
        return _image_info(img)

    def images_labelled(self, label: str, what: str = "") -> list[ImageInfo]:
        """The images that carry `label` (any value)."""
        with translated(what or f"listing images labelled {label}"):
            return [_image_info(i) for i in self._client.images.list(filters={"label": label})]

    def remove_image(self, ref: str, what: str = "") -> bool:
        """Remove the image `ref` (a tag: that tag; an id: the image, all its tags); False
        when there is none. A HalError when the engine refuses (a container uses it)."""
        with translated(what or f"removing image {ref}"):
            try:
                self._client.images.remove(ref, force=ref.startswith("sha256:"))
            except docker.errors.ImageNotFound:
                return False
        return True

    def has_image(self, ref: str) -> bool:
        return self.image(ref) is not None

    def require_image(self, ref: str, what: str = "") -> ImageInfo:
        """The image `ref`, which must exist (NoSuchSession when it does not)."""
        with translated(what or f"inspecting {ref}"):
            return _image_info(self._client.images.get(ref))

    def pull(self, ref: str) -> None:
        """Pull `ref`; a registry's refusal is a HalError holding the engine's explanation."""
        with translated(f"pulling {ref}"):
            try:
                self._client.images.pull(ref)
            except docker.errors.APIError as e:
                raise HalError(str(e.explanation or e)) from None

    def build(
        self,
        path: str,
        dockerfile: str,
        tag: str | None,
        target: str | None,
        buildargs: dict[str, str],
        labels: dict[str, str],
        nocache: bool,
    ) -> Iterator[BuildLine]:
        """Build with the host's network; each line of progress as it comes. `dockerfile` may
        lie outside `path` (docker-py sends it along); without `tag` the image is only cache."""
        with translated(f"building {tag or target}"):
            stream = self._client.api.build(
                path=path,
                dockerfile=dockerfile,
                tag=tag,
                target=target,
                buildargs=buildargs,
                network_mode="host",
                rm=True,
                forcerm=True,
                decode=True,
                nocache=nocache,
                labels=labels,
            )
            for chunk in stream:
                if "error" in chunk:
                    yield BuildLine(error=str(chunk["error"]))
                else:
                    yield BuildLine(text=str(chunk.get("stream", "")))

    def import_image(self, src: IO[bytes], repository: str, tag: str, what: str = "") -> None:
        """Import a root file system tar, read from `src` as it comes."""
        with translated(what or f"importing {repository}:{tag}"):
            self._client.api.import_image(src=src, repository=repository, tag=tag, stream_src=True)

    def save(self, ref: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """`docker save` of `ref` under its name, streamed."""
        with translated(f"saving {ref}"):
            img = self._client.images.get(ref)
            # under `ref` itself: `named=True` would name it by its first tag, another name
            # when the image has several (the parent would then lack `ref`)
            named: str | bool = next((t for t in (ref, f"{ref}:latest") if t in img.tags), True)
            yield from img.save(chunk_size=chunk_size, named=named)

    # --- volumes --------------------------------------------------------------------------

    def has_volume(self, name: str, what: str = "") -> bool:
        with translated(what or f"looking up volume {name}"):
            try:
                self._client.volumes.get(name)
            except docker.errors.NotFound:
                return False
        return True

    def remove_volume(self, name: str, what: str = "") -> bool:
        """Remove the volume `name`; False when there is none."""
        with translated(what or f"removing volume {name}"):
            try:
                self._client.volumes.get(name).remove()
            except docker.errors.NotFound:
                return False
        return True
