"""The background build of the services image: `python -m host_shim.commands.services_build`.

`claudy DIR` starts this, detached (host_shim/adapters/background.py), when the services
image is missing from the host or from the parent, and goes on to Claude Code without it.
This process takes the lock (or leaves: another one builds), builds the image when the host
lacks it, waits for the parent and loads it in; the parent starts the services on load and
registers their MCP servers with the workers. Its record says how it went (the next claudy,
`claudy status`, `claudy doctor` and the parent's services line read it); its output is
the log.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from rich.console import Console

from hal_common.errors import HalError
from hal_common.protocol import PARENT_RUNNING
from hal_common.services_build import BUILDING, DONE, FAILED, BuildRecord
from hal_common.shared_services import SERVICES_IMAGE
from host_shim.adapters import background, images
from host_shim.adapters.engine import ContainerHandle, HostEngine
from host_shim.adapters.parent import find_parent
from host_shim.adapters.parent_client import ParentClient
from host_shim.commands.context import Ctx, Host, load_ctx

PARENT_WAIT_S = 600.0  # the foreground claudy starts the parent meanwhile
LOAD_TRIES = 5


def wait_for_parent(engine: HostEngine, name: str, deadline: float) -> ContainerHandle | None:
    while time.monotonic() < deadline:
        parent = find_parent(engine, name)
        if parent is not None and parent.status == PARENT_RUNNING:
            return parent
        time.sleep(1.0)
    return None


def build_and_load(c: Ctx, engine: HostEngine, con: Console) -> str:
    """Build the services image if the host lacks it, then load it into the parent; what
    happened, in words."""
    t0 = time.monotonic()
    images.ensure_images(engine, c.cfg, con, c.host.env, only=frozenset({SERVICES_IMAGE}))
    built = f"built in {time.monotonic() - t0:.0f} s; "
    parent = wait_for_parent(engine, c.cfg.parent.name, time.monotonic() + PARENT_WAIT_S)
    if parent is None:
        return built + "the parent is not running: the next claudy loads the image"
    for attempt in range(LOAD_TRIES):
        try:
            images.ensure_inner_image(engine, ParentClient(parent), SERVICES_IMAGE, con)
            return built + f"loaded into {c.cfg.parent.name}"
        except HalError as e:  # the parent's engine may still be starting
            if attempt == LOAD_TRIES - 1:
                raise
            con.print(f"loading failed ({e.message}); again in 5 s")
            time.sleep(5.0)
    raise AssertionError("unreachable")


def main() -> int:
    host = Host.from_env(os.environ)
    paths = background.Paths.of(host.layout, host.env)
    con = Console(file=sys.stdout, width=160, highlight=False, force_terminal=False)
    with background.locked(paths) as held:
        if not held:
            con.print("another background build runs; leaving")
            return 0
        started = time.time()
        con.print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} background build (pid {os.getpid()})")

        def record(state: str, note: str = "") -> None:
            pid, ended = (os.getpid(), 0.0) if state == BUILDING else (0, time.time())
            rec = BuildRecord(state, SERVICES_IMAGE, str(paths.log), pid, started, ended, note)
            background.write_record(paths, rec)

        record(BUILDING)
        try:
            c = load_ctx(host)
            what = build_and_load(c, c.engine(), con)
        except HalError as e:
            msg = e.message + (f" ({e.hint})" if e.hint else "")
            con.print(f"failed: {msg}")
            record(FAILED, msg)
            return 1
        except Exception as e:  # noqa: BLE001 - recorded for the next claudy, with the trace in the log
            con.print(traceback.format_exc())
            record(FAILED, repr(e))
            return 1
        con.print(f"done: {what}")
        record(DONE)
        return 0


if __name__ == "__main__":
    sys.exit(main())
