"""`[services.NAME]`: shared service containers in the inner engine, one per enabled table.

A table names an `image` (present in the parent's engine) and optionally a `command` (argv;
its first word replaces the image's entrypoint), `env` (a table of strings) and `network`
(default `host`, the parent's namespace, so every worker reaches it on localhost). The
containers are labelled (role `service`); reconciling starts what is enabled, recreates what
changed and removes what is gone or disabled. A broken service is reported, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import docker
import docker.errors
import requests.exceptions

from hal_common import __version__, labels

log = logging.getLogger(__name__)

PREFIX = "hal9000-s-"
SPEC = f"{labels.PREFIX}.spec"


def enabled(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: t for n, t in services.items() if t.get("enabled", True) is not False}


def service_kwargs(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """create() arguments for one service table (pure); ValueError says what is wrong."""
    image = table.get("image")
    if not isinstance(image, str) or not image:
        raise ValueError(f"[services.{name}] needs an image")
    command = table.get("command", [])
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise ValueError(f"[services.{name}].command must be a list of strings")
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ValueError(f"[services.{name}].env must be a table of strings")
    spec = hashlib.sha256(json.dumps(table, sort_keys=True, default=str).encode()).hexdigest()
    kwargs: dict[str, Any] = {
        "image": image,
        "name": PREFIX + name,
        "labels": {
            labels.MANAGED: "true",
            labels.ROLE: "service",
            labels.SESSION: name,
            labels.VERSION: __version__,
            SPEC: spec[:12],
        },
        "environment": dict(env),
        "network_mode": str(table.get("network", "host")),
        "init": True,
        "detach": True,
        "restart_policy": {"Name": "unless-stopped"},
    }
    if command:
        kwargs["entrypoint"] = command[:1]
        kwargs["command"] = command[1:]
    return kwargs


def reconcile_services(
    client: docker.DockerClient, services: dict[str, dict[str, Any]]
) -> list[str]:
    """Make the engine's service containers match the enabled tables; returns the errors."""
    errors: list[str] = []
    wanted = enabled(services)
    try:
        have = {c.labels.get(labels.SESSION, ""): c for c in client.containers.list(
            all=True, filters=labels.managed_filter("service"))}  # fmt: skip
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        return [f"services: engine unavailable ({e})"]
    for name, c in have.items():
        if name not in wanted:
            _remove(c, errors, f"service {name} stopped (disabled)")
    for name, table in wanted.items():
        try:
            kwargs = service_kwargs(name, table)
        except ValueError as e:
            errors.append(str(e))
            continue
        current = have.get(name)
        if current is not None and current.labels.get(SPEC) == kwargs["labels"][SPEC]:
            if current.status != "running":
                _call(current.start, errors, f"service {name}")
            continue
        if current is not None:
            _remove(current, errors, f"service {name} changed; recreating")
        try:
            client.containers.run(**kwargs)
            log.info("service %s started", name)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            errors.append(f"service {name} did not start: {e}")
    return errors


def _remove(c: Any, errors: list[str], note: str) -> None:
    if _call(lambda: c.remove(force=True), errors, note):
        log.info("%s", note)


def _call(fn: Any, errors: list[str], what: str) -> bool:
    try:
        fn()
        return True
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        errors.append(f"{what}: {e}")
        return False
