"""Applying a changed config to running workers (adapter over the inner engine)."""

from __future__ import annotations

import logging

import docker
import docker.errors
import requests.exceptions

from hal_common import labels
from hal_common.config import WorkerConfig, parse_memory

log = logging.getLogger(__name__)


def limits_body(cfg: WorkerConfig) -> dict[str, int]:
    """The engine's update body for the worker limits (pure)."""
    memory = parse_memory(cfg.memory)
    return {
        "Memory": memory,
        "MemorySwap": memory if memory else -1,  # no swap beyond the limit (as created)
        "NanoCpus": int(cfg.cpus * 1e9),
        "PidsLimit": cfg.pids if cfg.pids else -1,
    }


def update_limits(
    client: docker.DockerClient, cfg: WorkerConfig, session: str | None = None
) -> list[str]:
    """`docker update` every running worker to `cfg`'s limits; returns the errors.

    docker-py's `update_container` knows neither NanoCpus nor PidsLimit, so this posts the
    engine's own update body (the API has taken both since 1.40).
    """
    errors = []
    running = client.containers.list(
        filters=labels.managed_filter(labels.ROLE_WORKER, session=session)
    )
    body = limits_body(cfg)
    api = client.api
    for c in running:
        try:
            res = api.post(f"{api.base_url}/v{api.api_version}/containers/{c.id}/update", json=body)
            if not res.ok:
                raise docker.errors.APIError(res.text.strip(), response=res)
            log.info("updated limits of %s", c.name, extra=body)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            errors.append(f"could not update {c.name}: {e}")
    return errors
