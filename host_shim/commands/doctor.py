"""`claudy doctor`: each check says what is wrong and how to fix it."""

from __future__ import annotations

import os
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from hal_common.credentials import describe_expiry
from hal_common.errors import HalError
from hal_common.protocol import PARENT_RUNNING
from hal_common.services_build import host_line
from hal_common.shared_services import SERVICES_IMAGE
from host_shim.adapters import auth, background, images
from host_shim.adapters.engine import ContainerHandle, HostEngine
from host_shim.adapters.parent import find_parent, restart_needed_by_env
from host_shim.adapters.parent_client import ParentClient, ParentCommandFailed
from host_shim.adapters.terminal import find_docker_cli
from host_shim.commands.context import Ctx, Host, load_ctx
from host_shim.commands.identity import doctor_line
from host_shim.core.build_context import find_context, recipes
from host_shim.core.parent_spec import (
    PARENT_LAYOUT,
    RESTART_NEEDED,
    resolve_security,
    volume_names,
)

MODE_NOTES = {
    "caps": "CAP_SYS_ADMIN, NET_ADMIN, SYS_PTRACE, unconfined seccomp/apparmor, "
    "/sys/fs/cgroup rw (no --privileged)",
    "privileged": "--privileged",
    "sysbox": "the sysbox-runc runtime (no extra privileges)",
}
DOCKER_CLI_HINT = "install the docker client (docker.io or docker-ce-cli)"


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


def engine_summary(engine: HostEngine) -> str:
    info = engine.info()
    return f"{info.server_version} ({info.driver}, cgroup v{info.cgroup_version})"


def privileges(engine: HostEngine, security: str, parent_name: str) -> str:
    mode = resolve_security(security, engine.info().runtimes)
    parent = find_parent(engine, parent_name)
    if parent is None or parent.status != PARENT_RUNNING:
        return f"{mode} mode: {MODE_NOTES[mode]}"
    if not ParentClient(parent).ready(2).ready:
        raise HalError(
            f"the parent runs but its inner engine is not up ({mode} mode)",
            hint=f"`docker logs {parent_name}`; if dockerd says 'operation not permitted', "
            'set [parent].security = "privileged" in the config, or install sysbox',
        )
    return f"{mode} mode, inner engine up"


def host_credential(console: Console, host: Host) -> None:
    """What `claudy` would import (a note, not a failure: workers can run logged out)."""
    found = auth.find(host.env)
    for note in found.notes:
        console.print(f"[yellow]![/] {escape(note)}", highlight=False)
    cred = found.credential
    if cred is None:
        console.print(
            "[yellow]![/] host credential: none found; workers start logged out "
            "(log in with `claude`, or claudy auth import --token-file F)"
        )
        return
    when = describe_expiry(cred.expires_at())
    console.print(
        f"[green]✓[/] host credential: {cred.kind} in {escape(cred.source)}, {when}",
        highlight=False,
    )


def restart_notes(console: Console, host: Host, parent: ContainerHandle) -> None:
    """What waits for `claudy down && claudy`: `[parent]` keys changed in the file (the
    parent's loop saw them) and HAL9000_* overrides the parent was not created with (a note,
    not a failure: the parent runs as it was made)."""
    try:
        keys = ParentClient(parent).health().restart_needed
    except ParentCommandFailed:
        keys = ()
    cfg = load_ctx(host).cfg
    for key in (*keys, *restart_needed_by_env(parent, host.env, cfg)):
        console.print(f"[yellow]![/] {RESTART_NEEDED.format(key=key)}", soft_wrap=True)


def run_checks(host: Host) -> int:
    """Run every check; 0 when all pass, 1 otherwise."""
    console = host.err
    doc = Doctor(console)
    ctxs: list[Ctx] = []
    engines: list[HostEngine] = []

    def config() -> str:
        ctxs.append(load_ctx(host))
        return f"{ctxs[0].config_dir}/config.toml, roots {', '.join(ctxs[0].roots)}"

    def engine() -> str:
        engines.append(ctxs[0].engine())
        return engine_summary(engines[0])

    def image_check() -> str:
        stale = [r.tag for r in recipes(ctxs[0].cfg) if not images.current(engines[0], r)]
        paths = background.Paths.of(host.layout, host.env)
        building = background.running(paths)
        line = host_line(background.read_record(paths), building)
        if building and stale == [SERVICES_IMAGE]:
            return f"all present but {line}"
        if line and not building:
            console.print(f"[yellow]![/] services: {line}", soft_wrap=True)
        if stale:
            raise HalError(
                f"missing or built from other sources: {', '.join(stale)}",
                hint="claudy (or claudy build) builds them, with progress",
            )
        return "all present and built from this install"

    if doc.check("config", config) and doc.check("engine", engine):
        cfg = ctxs[0].cfg
        doc.check(
            "privileges", lambda: privileges(engines[0], cfg.parent.security, cfg.parent.name)
        )
        doc.check("images", image_check)
        parent = find_parent(engines[0], cfg.parent.name)
        if parent is not None and parent.status == PARENT_RUNNING:
            report = ParentClient(parent).doctor()
            console.print("inside the parent:")
            for line in report.output.strip().splitlines():
                console.print(f"  {line}", highlight=False, markup=False)
            doc.failures += report.code != 0
            restart_notes(console, host, parent)
        else:  # the parent's own doctor says where its logs are when it runs
            volume = volume_names(cfg.parent.name)[str(PARENT_LAYOUT.data_dir)]
            console.print(
                f"[dim]parent not running: its logs, if it ran, are kept in the volume "
                f"{volume} ({PARENT_LAYOUT.log_dir}); `claudy logs --agent` reads them once "
                "it runs[/]",
                soft_wrap=True,
            )
    doc.check("docker client", lambda: find_docker_cli(host.env, DOCKER_CLI_HINT))
    doc.check("build context", lambda: str(find_context().images))
    host_credential(console, host)
    doctor_line(console, host)
    if os.getuid() == 0 and not host.env.get("SUDO_UID"):
        console.print(
            "[yellow]![/] running as root: a worker runs as its project's owner, never as root "
            "(uid 65532 for a project of root's)"
        )
    return 1 if doc.failures else 0
