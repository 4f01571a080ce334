"""Connecting to a Docker engine, and translating docker-py errors at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from hal_common.errors import EngineUnavailable, HalError, NoSuchSession


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


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1][:300] if text else type(e).__name__


@contextmanager
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
