"""Connecting to a Docker engine, and translating docker-py errors at the boundary."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import types
from collections.abc import Iterator, Mapping

import docker
import docker.api.client
import docker.errors
import requests.exceptions
from docker.context import ContextAPI
from docker.models.containers import Container
from docker.tls import TLSConfig
from docker.utils import kwargs_from_env

from hal_common.engines import EngineChoice
from hal_common.errors import EngineUnavailable, HalError, NoSuchSession, UsageError


def connect(
    base_url: str | None, what: str, hint: str, timeout: int = 60, pool: int = 10
) -> docker.DockerClient:
    """A client that has answered a ping, or EngineUnavailable saying what to do."""
    try:
        client = (
            docker.DockerClient(base_url=base_url, timeout=timeout, max_pool_size=pool)
            if base_url
            else docker.from_env(timeout=timeout, max_pool_size=pool)
        )
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        raise EngineUnavailable(f"{what} does not answer: {_short(e)}", hint=hint) from None
    return client


def connect_choice(
    choice: EngineChoice,
    env: Mapping[str, str],
    what: str,
    hint: str,
    timeout: int = 60,
    pool: int = 10,
) -> docker.DockerClient:
    """A client of `choice` that has answered a ping. ssh:// goes through the ssh binary
    (`use_ssh_client`: ~/.ssh/config, agents and known_hosts as the user's own ssh);
    tcp:// takes its TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH in `env`, a context its
    own TLS material."""
    _ssh_without_paramiko()
    try:
        if choice.host:
            tls: TLSConfig | bool = False
            if choice.host.startswith("tcp://"):
                tls = kwargs_from_env(environment=dict(env)).get("tls") or False
            client = docker.DockerClient(
                base_url=choice.host,
                tls=tls,
                timeout=timeout,
                max_pool_size=pool,
                use_ssh_client=True,
            )
        elif choice.context:
            ctx = ContextAPI.get_context(choice.context)
            if ctx is None:
                known = ", ".join(sorted(c.Name for c in ContextAPI.contexts())) or "none"
                raise UsageError(
                    f"{choice.origin}: no Docker context {choice.context!r} (known: {known})",
                    hint="docker context ls lists them; docker context create makes one",
                )
            params = ContextAPI.kwargs_from_context(name=choice.context)
            client = docker.DockerClient(
                **params, timeout=timeout, max_pool_size=pool, use_ssh_client=True
            )
        else:
            client = docker.from_env(
                timeout=timeout, max_pool_size=pool, use_ssh_client=True, environment=dict(env)
            )
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        raise EngineUnavailable(f"{what} does not answer: {_short(e)}", hint=hint) from None
    return client


def engine_url(choice: EngineChoice, env: Mapping[str, str]) -> str:
    """The URL `choice` reaches (a context's, or the current context's, or the default
    socket): for messages, hints and `status --all`."""
    if choice.host:
        return choice.host
    with_context = choice.context or env.get("DOCKER_CONTEXT") or None
    ctx = ContextAPI.get_context(with_context)
    host = ctx.Host if ctx is not None else None
    return str(host or "unix:///var/run/docker.sock")


def contexts() -> list[tuple[str, str]]:
    """The Docker CLI's contexts: (name, its engine's URL), the built-in `default` first."""
    found: list[tuple[str, str]] = []
    for ctx in ContextAPI.contexts():
        found.append((str(ctx.Name), str(ctx.Host or "")))
    return found


def current_context(env: Mapping[str, str]) -> str:
    """The context the Docker CLI would use: DOCKER_CONTEXT, else config.json's current."""
    ctx = ContextAPI.get_current_context()
    return env.get("DOCKER_CONTEXT") or (str(ctx.Name) if ctx is not None else "default")


class _NoParamiko(types.ModuleType):
    """Stands in for paramiko, which docker-py's ssh transport imports first even when it
    shells out to the ssh binary (`use_ssh_client=True`, the only way hal-9000 uses it):
    any use of it is an error that says so."""

    def __getattr__(self, name: str) -> object:
        raise ImportError(f"paramiko.{name}: hal-9000 reaches ssh:// engines with the ssh binary")


def _ssh_without_paramiko() -> None:
    """docker-py's ssh adapter, importable without paramiko (see `_NoParamiko`), and its
    socket's close made safe: docker-py writes to the ssh process's stdin on close, which
    raises BrokenPipeError once `docker system dial-stdio` has ended (after every exec's
    stream), and leaves the process unreaped."""
    api_client = docker.api.client
    if hasattr(api_client, "SSHHTTPAdapter") and getattr(api_client, "_hal_ssh", False):
        return
    sys.modules.setdefault("paramiko", _NoParamiko("paramiko"))
    from docker.transport import sshconn

    class SSHSocket(sshconn.SSHSocket):
        def close(self) -> None:
            proc = self.proc
            with contextlib.suppress(OSError):  # the ssh process is gone: nothing to tell it
                super().close()
            if proc is not None:
                if proc.stdin is not None:
                    with contextlib.suppress(OSError, ValueError):
                        proc.stdin.close()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()

    sshconn.SSHSocket = SSHSocket  # type: ignore[misc]  # what its connections make (a global)
    api_client.SSHHTTPAdapter = sshconn.SSHHTTPAdapter  # type: ignore[attr-defined]
    api_client._hal_ssh = True  # type: ignore[attr-defined]


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1][:300] if text else type(e).__name__


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn docker-py and transport errors into HalErrors (one place, like docker-py's own)."""
    try:
        yield
    except docker.errors.NotFound as e:
        raise NoSuchSession(f"{what}: {e.explanation or e}") from None
    except docker.errors.APIError as e:
        raise HalError(f"{what}: {e.explanation or e}") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise EngineUnavailable(
            f"{what}: engine unavailable ({_short(e)})",
            hint="check that the Docker engine runs (claudy doctor)",
        ) from None


def run_in(container: Container, argv: list[str], what: str = "") -> tuple[int, str]:
    """`exec_run` in `container`: (exit code, combined output as text)."""
    with translated(what or f"running {argv[0]} in {container.name}"):
        res = container.exec_run(argv)
    out = res.output if isinstance(res.output, bytes) else b""
    return int(res.exit_code if res.exit_code is not None else 1), out.decode(errors="replace")


def run_split(container: Container, argv: list[str], what: str = "") -> tuple[int, str, str]:
    """`exec_run` in `container` with its streams apart: (exit code, stdout, stderr). The
    engine reads the two pipes on their own, so a combined output's order is not the order
    they were written in: a line printed last on stdout can arrive before stderr's."""
    with translated(what or f"running {argv[0]} in {container.name}"):
        res = container.exec_run(argv, demux=True)
    out, err = res.output if isinstance(res.output, tuple) else (None, None)
    code = int(res.exit_code if res.exit_code is not None else 1)
    return code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
