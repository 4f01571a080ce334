"""The inner engine behind one class: the parent's only module that talks to docker-py.

Every call translates docker-py's and the transport's errors into the HalError family
(`hal_io.engine.translated`: NotFound → NoSuchSession, other API errors → HalError, no
answer → EngineUnavailable), plus two a caller acts on: a name conflict (409) →
NameConflict, a missing image → ImageMissing. Each call takes an optional `what` that starts
the error's message ("starting worker x: …"), so callers keep their own wording.

It returns plain data: the engine's inspect dicts, or the small values of `core.model`
(Listed, ContainerEvent), never docker-py objects.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import docker
import docker.errors
import docker.types
import requests.exceptions

from hal_common import labels
from hal_common.egress import GATEWAY, WORKER_BRIDGE, WORKER_NETWORK, WORKER_SUBNET
from hal_common.errors import HalError, ImageMissing, NameConflict
from hal_io.engine import connect, translated
from parent_agent.core.model import ContainerEvent, Listed, to_event, to_listed

log = logging.getLogger(__name__)

_TRANSPORT = (docker.errors.DockerException, requests.exceptions.RequestException)


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a container gave: its exit code and its output (both streams)."""

    exit_code: int
    output: str


NETWORK_OPTIONS = {
    "com.docker.network.bridge.name": WORKER_BRIDGE,
    "com.docker.network.bridge.enable_icc": "false",
}


def network_fits(attrs: Mapping[str, Any]) -> bool:
    """The network's inspect data says it is the workers' network as hal-9000 makes it."""
    configs = (attrs.get("IPAM") or {}).get("Config") or []
    options = attrs.get("Options") or {}
    return (
        attrs.get("Driver") == "bridge"
        and attrs.get("Internal") is True
        and all(options.get(k) == v for k, v in NETWORK_OPTIONS.items())
        and [(c.get("Subnet"), c.get("Gateway")) for c in configs] == [(WORKER_SUBNET, GATEWAY)]
    )


@contextmanager
def _creating(what: str, image: str) -> Iterator[None]:
    """`translated`, with a missing image and a name conflict told apart."""
    with translated(what):
        try:
            yield
        except docker.errors.ImageNotFound:
            raise ImageMissing(
                f"{what}: the inner engine has no image {image}",
                hint="run claudy from the host: it loads the images into the parent",
            ) from None
        except docker.errors.APIError as e:
            if e.status_code == 409:
                raise NameConflict(f"{what}: {e.explanation or e}") from None
            raise


class InnerEngine:
    """The parent's Docker engine (its own dockerd), over an injected `docker.DockerClient`.

    Every product module goes through its methods; `client` stays reachable for the tests,
    which look at what the engine holds as docker-py shows it.
    """

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    # --- connecting ----------------------------------------------------------------------------

    @classmethod
    def connect(cls, base_url: str, what: str, hint: str, pool: int = 10) -> InnerEngine:
        """An engine that has answered a ping, or EngineUnavailable saying `what` and `hint`."""
        return cls(connect(base_url, what, hint=hint, pool=pool))

    @classmethod
    def at(cls, base_url: str, version: str, timeout: int = 60) -> InnerEngine:
        """An engine at `base_url` speaking API `version`, not asked anything yet: for a
        dockerd that is starting (docker-py would otherwise ask it for its version)."""
        return cls(docker.DockerClient(base_url=base_url, version=version, timeout=timeout))

    def ping(self) -> bool:
        """True when the engine answers now; False when it does not (yet)."""
        try:
            return bool(self.client.ping())
        except _TRANSPORT as e:
            log.debug("engine does not answer: %s", e)
            return False

    def close(self) -> None:
        self.client.close()

    def info(self, what: str = "asking the inner engine") -> dict[str, Any]:
        with translated(what):
            return dict(self.client.info())

    def version(self, what: str = "asking the inner engine") -> dict[str, Any]:
        with translated(what):
            return dict(self.client.version())

    # --- finding containers --------------------------------------------------------------------

    def containers(
        self,
        role: str | None = None,
        session: str | None = None,
        project: str | None = None,
        stopped: bool = True,
        what: str = "listing containers",
    ) -> list[Listed]:
        """Our containers (by label), narrowed by role, session and project; running ones
        only unless `stopped`. One list call, no inspect."""
        filters = labels.managed_filter(role, session, project)
        with translated(what):
            found = self.client.api.containers(all=stopped, filters=filters)
        return [to_listed(s) for s in found]

    def inspect_all(
        self,
        role: str | None = None,
        session: str | None = None,
        project: str | None = None,
        stopped: bool = True,
        what: str = "listing containers",
    ) -> list[dict[str, Any]]:
        """The inspect data of the containers `containers` lists (those removed in between
        left out)."""
        listed = self.containers(role, session, project, stopped, what)
        return [a for a in (self.inspect(c.id, what) for c in listed) if a is not None]

    def inspect(self, name: str, what: str = "") -> dict[str, Any] | None:
        """The inspect data of container `name` (a name or an id), or None when there is none."""
        with translated(what or f"inspecting {name}"):
            try:
                return dict(self.client.api.inspect_container(name))
            except docker.errors.NotFound:
                return None

    # --- making and changing containers --------------------------------------------------------

    def create(self, what: str = "", **kwargs: Any) -> dict[str, Any]:
        """Create a container from docker-py's `containers.create` arguments; its inspect
        data. NameConflict when the name is taken, ImageMissing when the image is."""
        image = str(kwargs.get("image", ""))
        with _creating(what or f"creating {kwargs.get('name', 'a container')}", image):
            return dict(self.client.containers.create(**kwargs).attrs)

    def run(self, what: str = "", **kwargs: Any) -> dict[str, Any]:
        """Create and start a container (never pulling: the host brings the images); its
        inspect data once started. NameConflict and ImageMissing as `create`."""
        kwargs.pop("detach", None)
        made = self.create(what, **kwargs)
        self.start(made["Id"], what)
        return self.inspect(made["Id"], what) or made

    def start(self, name: str, what: str = "") -> None:
        with translated(what or f"starting {name}"):
            self.client.api.start(name)

    def stop(self, name: str, timeout: int = 10, what: str = "") -> None:
        with translated(what or f"stopping {name}"):
            self.client.api.stop(name, timeout=timeout)

    def restart(self, name: str, timeout: int = 10, what: str = "") -> None:
        with translated(what or f"restarting {name}"):
            self.client.api.restart(name, timeout=timeout)

    def remove(self, name: str, force: bool = False, what: str = "") -> None:
        with translated(what or f"removing {name}"):
            self.client.api.remove_container(name, force=force)

    def update_limits(self, name: str, body: Mapping[str, int], what: str = "") -> None:
        """Post the engine's own update body (see `core.spec.limits_body`) for `name`.

        docker-py's `update_container` knows neither NanoCpus nor PidsLimit; the engine's
        API has taken both since 1.40.
        """
        api = self.client.api
        with translated(what or f"updating {name}"):
            res = api.post(
                f"{api.base_url}/v{api.api_version}/containers/{name}/update", json=dict(body)
            )
            try:
                res.raise_for_status()
            except requests.exceptions.HTTPError as e:
                docker.errors.create_api_error_from_http_exception(e)

    # --- the workers' network -----------------------------------------------------------------

    def ensure_network(self, what: str = "making the workers' network") -> dict[str, Any]:
        """The workers' network (`hal_common.egress`): an internal bridge, ICC off, with a
        fixed bridge name, subnet and gateway. Made when missing; one made otherwise (by an
        older hal-9000, by hand) is replaced while no container is on it, else HalError: a
        worker must never land on a network with a way out. Its inspect data."""
        with translated(what):
            try:
                have = dict(self.client.api.inspect_network(WORKER_NETWORK))
            except docker.errors.NotFound:
                have = None
            if have is not None and network_fits(have):
                return have
            if have is not None:
                if have.get("Containers"):
                    raise HalError(
                        f"{what}: network {WORKER_NETWORK} is not the internal one hal-9000 "
                        "makes and has containers on it",
                        hint=f"remove them and the network (docker network rm {WORKER_NETWORK})",
                    )
                log.warning("replacing network %s: not the one hal-9000 makes", WORKER_NETWORK)
                self.client.api.remove_network(have["Id"])
            ipam = docker.types.IPAMConfig(
                pool_configs=[docker.types.IPAMPool(subnet=WORKER_SUBNET, gateway=GATEWAY)]
            )
            try:
                self.client.api.create_network(
                    WORKER_NETWORK,
                    driver="bridge",
                    internal=True,
                    ipam=ipam,
                    options=dict(NETWORK_OPTIONS),
                    labels={labels.MANAGED: "true"},
                    check_duplicate=True,
                )
            except docker.errors.APIError as e:
                if e.status_code != 409:  # made at once by another: theirs is the same
                    raise
            return dict(self.client.api.inspect_network(WORKER_NETWORK))

    def network(self, name: str, what: str = "") -> dict[str, Any] | None:
        """The inspect data of network `name`, or None when there is none."""
        with translated(what or f"looking up network {name}"):
            try:
                return dict(self.client.api.inspect_network(name))
            except docker.errors.NotFound:
                return None

    def network_members(self, what: str = "listing the workers' addresses") -> dict[str, str]:
        """The containers on the workers' network: IPv4 address → container name (one call;
        {} when the network is missing)."""
        with translated(what):
            try:
                attrs = self.client.api.inspect_network(WORKER_NETWORK)
            except docker.errors.NotFound:
                return {}
        out = {}
        for member in (attrs.get("Containers") or {}).values():
            ip = str(member.get("IPv4Address") or "").split("/")[0]
            if ip:
                out[ip] = str(member.get("Name") or "")
        return out

    # --- looking inside ------------------------------------------------------------------------

    def logs(self, name: str, tail: int | Literal["all"] = "all", what: str = "") -> bytes:
        with translated(what or f"reading the log of {name}"):
            return bytes(self.client.api.logs(name, tail=tail))

    def follow_logs(
        self, name: str, tail: int | Literal["all"] = "all", what: str = ""
    ) -> Iterator[bytes]:
        """The log's last `tail` lines, then each new chunk as it comes, until it stops."""
        with translated(what or f"reading the log of {name}"):
            yield from self.client.api.logs(name, stream=True, follow=True, tail=tail)

    def exec(self, name: str, argv: Sequence[str], what: str = "") -> ExecResult:
        """Run `argv` in container `name` and wait for it."""
        api = self.client.api
        with translated(what or f"running {argv[0]} in {name}"):
            ex = api.exec_create(name, list(argv), stdout=True, stderr=True)
            out = api.exec_start(ex["Id"])
            code = api.exec_inspect(ex["Id"]).get("ExitCode")
        text = out.decode(errors="replace") if isinstance(out, bytes) else ""
        return ExecResult(int(code) if code is not None else 1, text)

    def top(self, name: str, ps_args: str | None = None, what: str = "") -> dict[str, Any]:
        """The engine's `top` of `name`: {"Titles": [...], "Processes": [[...], ...]}."""
        with translated(what or f"listing the processes of {name}"):
            return dict(self.client.api.top(name, ps_args=ps_args))

    def stats(self, name: str, what: str = "") -> dict[str, Any]:
        """One raw stats sample of `name` (the engine's figures, one-shot)."""
        with translated(what or f"sampling {name}"):
            return dict(self.client.api.stats(name, stream=False, one_shot=True))

    # --- images --------------------------------------------------------------------------------

    def image(self, image: str, what: str = "") -> dict[str, Any] | None:
        """The inspect data of `image`, or None when the engine has no such image."""
        with translated(what or f"looking up image {image}"):
            try:
                return dict(self.client.images.get(image).attrs)
            except docker.errors.NotFound:
                return None

    def image_id(self, image: str, what: str = "") -> str | None:
        found = self.image(image, what)
        return str(found["Id"]) if found is not None else None

    def has_image(self, image: str, what: str = "") -> bool:
        return self.image(image, what) is not None

    def image_labels(self, image: str, what: str = "") -> dict[str, str] | None:
        """The labels of `image` ({} when it has none), or None when it is missing."""
        found = self.image(image, what)
        if found is None:
            return None
        return dict((found.get("Config") or {}).get("Labels") or {})

    def load_image(
        self, chunks: Iterable[bytes], what: str = "loading the image into the inner engine"
    ) -> Iterator[str]:
        """Load an image tar (a `docker save` stream); yields the engine's progress lines.
        HalError when the engine refuses it."""
        with translated(what):
            lines = self.client.api.load_image(chunks, quiet=True)  # type: ignore[no-untyped-call]
            for line in lines:
                if "error" in line:
                    raise HalError(f"inner engine refused the image: {line['error']}")
                if "stream" in line:
                    yield str(line["stream"]).strip()

    def build(
        self,
        context: bytes,
        tag: str,
        image_labels: Mapping[str, str],
        what: str = "building an image",
    ) -> Iterator[str]:
        """Build `context` (a tar holding `Dockerfile`) as `tag` with the legacy builder on
        the engine's default network; yields the build's output lines. HalError (the
        build's own message) when a step fails."""
        with translated(what):
            lines = self.client.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                labels=dict(image_labels),
            )
            for line in lines:
                if "error" in line:
                    raise HalError(f"{what}: {str(line['error']).strip()}")
                if "stream" in line:
                    text = str(line["stream"]).rstrip()
                    if text:
                        yield text

    # --- events --------------------------------------------------------------------------------

    def events(self, actions: Sequence[str]) -> Iterator[ContainerEvent]:
        """Our containers' events of these `actions`, as they happen. Ends (quietly) when
        the engine goes away or the stream is closed."""
        filters = {"type": "container", "label": f"{labels.MANAGED}=true", "event": list(actions)}
        try:
            for raw in self.client.events(decode=True, filters=filters):
                yield to_event(raw)
        except _TRANSPORT as e:
            log.debug("event stream ended: %s", e)
