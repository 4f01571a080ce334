"""Handing the user's terminal over: the docker CLI found on PATH, then `execvp`."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import NoReturn

from hal_common.errors import HalError


def find_docker_cli(env: Mapping[str, str], hint: str = "install the docker client") -> str:
    found = shutil.which("docker", path=env.get("PATH"))
    if found is None:
        raise HalError("the docker command is not on PATH", hint=hint)
    return found


def hand_over(program: str, argv: list[str]) -> NoReturn:
    """Replace this process with `program argv…` (the terminal goes with it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(program, argv)  # noqa: S606 - the terminal is handed to docker exec
