"""`claudy doctor`: each check says what is wrong and how to fix it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import docker
from rich.console import Console
from rich.markup import escape

from hal_common.errors import HalError
from hal_io.engine import run_in
from host_shim.adapters import images
from host_shim.adapters.parent import find_parent, resolve_security
from host_shim.core.build_context import context_dir, recipes

MODE_NOTES = {
    "caps": "CAP_SYS_ADMIN, NET_ADMIN, SYS_PTRACE, unconfined seccomp/apparmor, "
    "/sys/fs/cgroup rw (no --privileged)",
    "privileged": "--privileged",
    "sysbox": "the sysbox-runc runtime (no extra privileges)",
}


class Doctor:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.failures = 0

    def check(self, title: str, fn: Callable[[], str]) -> bool:
        try:
            detail = fn()
        except HalError as e:
            self.failures += 1
            self.console.print(f"[red]✗[/] {title}: {e.message}")
            if e.hint:
                self.console.print(f"    [dim]fix:[/] {e.hint}")
            return False
        self.console.print(f"[green]✓[/] {title}{': ' + detail if detail else ''}")
        return True


def engine_summary(client: docker.DockerClient) -> str:
    info = client.info()
    return (f"{info.get('ServerVersion')} ({info.get('Driver')}, "
            f"cgroup v{info.get('CgroupVersion', '1')})")  # fmt: skip


def privileges(client: docker.DockerClient, security: str, parent_name: str) -> str:
    runtimes = set((client.info().get("Runtimes") or {}).keys())
    mode = resolve_security(security, runtimes)
    parent = find_parent(client, parent_name)
    if parent is None or parent.status != "running":
        return f"{mode} mode: {MODE_NOTES[mode]}"
    res = parent.exec_run(["hal-agent", "ready", "--timeout", "2"])
    if res.exit_code != 0:
        raise HalError(
            f"the parent runs but its inner engine is not up ({mode} mode)",
            hint=f"`docker logs {parent_name}`; if dockerd says 'operation not permitted', "
            'set [parent].security = "privileged" in the config, or install sysbox',
        )
    return f"{mode} mode, inner engine up"


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise HalError("the docker command is not on PATH",
                       hint="install the docker client (docker.io or docker-ce-cli)")  # fmt: skip
    return found


def host_credential(console: Console) -> None:
    """What `claudy` would import (a note, not a failure: workers can run logged out)."""
    from hal_common.credentials import describe_expiry
    from host_shim.adapters import auth

    found = auth.find()
    for note in found.notes:
        console.print(f"[yellow]![/] {escape(note)}", highlight=False)
    cred = found.credential
    if cred is None:
        console.print("[yellow]![/] host credential: none found; workers start logged out "
                      "(log in with `claude`, or claudy auth import --token-file F)")  # fmt: skip
        return
    when = describe_expiry(cred.expires_at())
    console.print(f"[green]✓[/] host credential: {cred.kind} in {escape(cred.source)}, {when}",
                  highlight=False)  # fmt: skip


def run_checks(console: Console) -> int:
    """Run every check; 0 when all pass, 1 otherwise."""
    from host_shim.commands.cli import Ctx, load_ctx

    doc = Doctor(console)
    ctxs: list[Ctx] = []
    clients: list[docker.DockerClient] = []

    def config() -> str:
        ctxs.append(load_ctx())
        return f"{ctxs[0].config_dir}/config.toml, roots {', '.join(ctxs[0].roots)}"

    def engine() -> str:
        clients.append(ctxs[0].client())
        return engine_summary(clients[0])

    def image_check() -> str:
        stale = [r.tag for r in recipes(ctxs[0].cfg) if not images.current(clients[0], r)]
        if stale:
            raise HalError(f"missing or built from other sources: {', '.join(stale)}",
                           hint="claudy (or claudy build) builds them, with progress")  # fmt: skip
        return "all present and built from this checkout"

    if doc.check("config", config) and doc.check("engine", engine):
        cfg = ctxs[0].cfg
        doc.check(
            "privileges", lambda: privileges(clients[0], cfg.parent.security, cfg.parent.name)
        )
        doc.check("images", image_check)
        parent = find_parent(clients[0], cfg.parent.name)
        if parent is not None and parent.status == "running":
            code, out = run_in(parent, ["hal-agent", "doctor"], "asking the parent")
            console.print("inside the parent:")
            for line in out.strip().splitlines():
                console.print(f"  {line}", highlight=False, markup=False)
            doc.failures += code != 0
    doc.check("docker client", docker_cli)
    doc.check("build context", lambda: str(context_dir()))
    host_credential(console)
    if os.getuid() == 0 and not os.environ.get("SUDO_UID"):
        console.print("[yellow]![/] running as root: each worker runs as its project's owner")
    return 1 if doc.failures else 0
