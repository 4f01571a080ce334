"""hal-agent's looking-glass commands: stats, keys, doctor, version; and the key handler."""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable

import click
from rich.live import Live
from rich.table import Table

from hal_common import __version__
from hal_common.errors import HalError
from hal_common.layout import ParentLayout
from hal_common.protocol import ServicesReply, StatsReply
from hal_common.shared_services import ServiceSpec
from hal_io import manners
from parent_agent.adapters import claude_home, workers
from parent_agent.adapters.engine import InnerEngine
from parent_agent.adapters.usage import Sampler
from parent_agent.commands.context import Parent, pass_parent
from parent_agent.commands.workers import go_next_waiting, open_shell, restart_worker
from parent_agent.core.keys import bindings, display
from parent_agent.core.services import container_name
from parent_agent.core.usage import Usage, human_bytes

log = logging.getLogger(__name__)


def _stats_table(use: dict[str, Usage]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("name", "cpu", "mem used/limit", "pids", "net rx/tx", "block r/w"):
        table.add_column(col, justify="left" if col == "name" else "right", no_wrap=True)
    for name, u in sorted(use.items()):
        cpu = f"{u.cpu_pct:.1f}%" if u.cpu_pct is not None else "-"
        limit = human_bytes(u.mem_limit) if u.mem_limit and u.mem_limit < 1 << 50 else "-"
        table.add_row(
            name,
            cpu,
            f"{human_bytes(u.mem_used)}/{limit}",
            str(u.pids),
            f"{human_bytes(u.net_rx)}/{human_bytes(u.net_tx)}",
            f"{human_bytes(u.blk_read)}/{human_bytes(u.blk_write)}",
        )
    if not use:
        table.add_row("no running workers", "", "", "", "", "")
    return table


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One sample as JSON (implies --no-stream).")
@click.option("--no-stream", is_flag=True, help="Print one sample and exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between samples.")
@pass_parent
def stats(p: Parent, as_json: bool, no_stream: bool, interval: float) -> None:
    """CPU %, memory used/limit, pids, net and block I/O of each running worker."""
    engine = p.inner()
    sampler = Sampler(engine)
    pause = threading.Event()

    def sample() -> dict[str, Usage]:
        running = [w for w in workers.list_workers(engine) if w.state == "running"]
        return sampler.sample(running)

    try:
        sample()  # the first sample only seeds CPU %
        pause.wait(min(interval, 1.0))
        use = sample()
        if as_json:
            reply = StatsReply(dict(sorted(use.items())))
            click.echo(reply.dumps())
            return
        if no_stream:
            manners.console().print(_stats_table(use))
            return
        live_ = Live(console=manners.console(), auto_refresh=False)
        with contextlib.suppress(KeyboardInterrupt), live_ as live:
            while True:
                live.update(_stats_table(use), refresh=True)
                pause.wait(interval)
                use = sample()
    finally:
        sampler.close()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_parent
def keys(p: Parent, as_json: bool) -> None:
    """The tmux prefix keys in force (configured under [keys])."""
    cfg = p.config()
    binds = bindings(_keys_mapping(cfg.keys))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "prefix": cfg.keys.prefix,
                    "bindings": [
                        {
                            "action": b.action,
                            "key": b.key,
                            "command": display(b.command),
                            "description": b.description,
                        }
                        for b in binds
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(f"prefix: {cfg.keys.prefix}   (then the key)")
    for b in binds:
        click.echo(f"  {b.key:6} {b.description}")


def _keys_mapping(keys_cfg: object) -> dict[str, str]:
    return {k: v for k, v in vars(keys_cfg).items() if isinstance(v, str) and k != "prefix"}


@click.command()
@pass_parent
def version(p: Parent) -> None:
    """Versions of hal-9000, the inner engine, tmux and Claude Code."""
    click.echo(f"hal-9000 {__version__}")
    tmux = subprocess.run(["tmux", "-V"], capture_output=True, text=True, check=False)
    click.echo(tmux.stdout.strip() or "tmux: not found")
    click.echo(claude_line(p))
    try:
        engine = p.inner()
        click.echo(f"inner dockerd {engine.version().get('Version', '?')}")
        worker_image = p.config().worker.image
        if engine.image_labels(worker_image) is None:
            click.echo(f"worker image: no such image: {worker_image}")
    except HalError as e:
        click.echo(f"inner engine: {e.message}")
    except Exception as e:  # noqa: BLE001 - version must print what it can, whatever fails
        click.echo(f"worker image: {e}")


def claude_line(p: Parent) -> str:
    """Which Claude Code new workers get, from the store (`hal-agent claude ls` says more)."""
    from hal_common import claude_code
    from parent_agent.adapters import claude_store

    have = [i.version for i in claude_store.installed(p.layout.claude_store)]
    pin = p.config().claude.version
    goal = claude_code.target(pin, have)
    if goal is None:
        return "claude code: none installed (claudy claude update)"
    why = "pinned" if pin else "newest installed"
    missing = "" if goal in have else ", not installed"
    return f"claude code {goal} for new workers ({why}{missing}); installed: {', '.join(have)}"


@click.command()
@pass_parent
def doctor(p: Parent) -> None:
    """Check the inner engine, storage, tmux, images, Claude home and disk; say how to fix."""
    failures = 0

    def report(ok: bool, title: str, detail: str, fix: str = "") -> None:
        nonlocal failures
        failures += not ok
        click.echo(f"{'✓' if ok else '✗'} {title}: {detail}")
        if not ok and fix:
            click.echo(f"    fix: {fix}")

    try:
        cfg = p.config()
        report(True, "config", str(p.layout.config_file))
    except HalError as e:
        report(False, "config", e.message, "fix the file; the defaults apply meanwhile")
        from hal_common.config import Config

        cfg = Config()
    try:
        engine = p.inner()
        info = engine.info()
        driver = info.get("Driver", "?")
        report(True, "inner engine", f"dockerd {info.get('ServerVersion')}")
        fix = "mount a volume on /var/lib/docker (claudy does) on an overlay2-capable fs"
        report(driver == "overlay2", "storage driver", driver, fix)
        if engine.has_image(cfg.worker.image):
            report(True, "worker image", cfg.worker.image)
        else:
            report(
                False,
                "worker image",
                f"{cfg.worker.image} missing",
                "run claudy on the host; it loads the image into the parent",
            )
        _doctor_services(engine, p.layout, cfg.services, report)
        _doctor_workers(engine, p.layout, report)
        _doctor_network(engine, report)
    except HalError as e:
        report(False, "inner engine", e.message, "hal-agent logs --dockerd says why")
    ui = p.ui()
    report(
        ui.alive() and ui.session() is not None,
        "tmux",
        str(p.layout.tmux_sock),
        "hal-agent run restores it within a second; if not, restart the parent",
    )
    home = p.layout.claude_home
    mode = oct(home.stat().st_mode & 0o777) if home.exists() else "missing"
    report(mode == "0o700", "claude home", f"{home} {mode}", f"chmod 700 {home}")
    from parent_agent.commands.auth import describe

    auth = claude_home.auth_status(home)
    if auth.get("present") or auth.get("error"):
        report(
            not auth.get("error"),
            "credentials",
            describe(auth).replace("\n  ", "; "),
            "claudy auth import on the host",
        )
    else:
        click.echo(
            "! credentials: none imported; workers start logged out "
            "(log in on the host, then claudy auth import)"
        )
    _doctor_logs(p.layout, report)
    if p.layout.inner_data_root.exists():
        free = shutil.disk_usage(p.layout.inner_data_root).free
        where = f"{human_bytes(free)} free under {p.layout.inner_data_root}"
        report(free > 2 << 30, "disk", where, "hal-agent gc removes stopped workers")
    raise SystemExit(1 if failures else 0)


def _doctor_logs(layout: ParentLayout, report: Callable[[bool, str, str, str], None]) -> None:
    """Where the parent's logs are (in the data volume: they outlive `claudy down`)."""
    import os

    from parent_agent.adapters import logfiles

    where = layout.log_dir
    size = f"rotated at {logfiles.MAX_BYTES >> 20} MiB, {logfiles.BACKUPS} kept"
    names = ", ".join(p.name for p in (layout.agent_log, layout.dockerd_log, layout.dashboard_log))
    report(
        where.is_dir() and os.access(where, os.W_OK),
        "logs",
        f"{where} ({names}, {layout.egress_log.name}; {size}): "
        "hal-agent logs --agent|--dockerd|--dashboard [-f]",
        f"hal-agent run makes {where}; is the data volume mounted on {layout.data_dir}?",
    )


def _doctor_workers(
    engine: InnerEngine, layout: ParentLayout, report: Callable[[bool, str, str, str], None]
) -> None:
    """Each worker's posture: its user, capabilities, no-new-privileges, seccomp, read-only
    root, limits and network, from its inspect data and its init's /proc/1/status."""
    import os

    from hal_common import labels
    from parent_agent.core.posture import ENGINE_SOCKETS, engine_seccomp, posture
    from parent_agent.core.spec import owner_note

    seccomp = engine_seccomp(engine.info())
    report(
        seccomp,
        "worker confinement",
        "the inner engine applies its default seccomp profile"
        if seccomp
        else "the inner engine has no seccomp: workers run without a system call filter",
        "the parent's dockerd must be built with seccomp (Debian's docker.io is)",
    )
    for attrs in engine.inspect_all(labels.ROLE_WORKER, what="listing workers"):
        name = str(attrs.get("Name") or "").lstrip("/")
        status = None
        if (attrs.get("State") or {}).get("Status") == "running":
            try:
                res = engine.exec(name, ["cat", "/proc/1/status"], f"reading {name}'s status")
                status = res.output if res.exit_code == 0 else None
            except HalError:
                status = None  # stopped meanwhile
        p = posture(attrs, status, (str(layout.inner_docker_sock), *ENGINE_SOCKETS))
        session = (attrs.get("Config") or {}).get("Labels", {}).get(labels.SESSION, name)
        project = (attrs.get("Config") or {}).get("Labels", {}).get(labels.PROJECT, "")
        detail = ", ".join(p.facts) + ("" if p.state == "running" else f" ({p.state})")
        if not p.ok:
            detail = f"NOT HARDENED: {'; '.join(p.problems)} [{detail}]"
        fix = (
            f"an older worker: hal-agent stop {session} && hal-agent rm {session}, then "
            f"claudy {project or 'DIR'} creates it hardened"
        )
        report(p.ok, f"worker {session}", detail, fix)
        if p.dedicated and project:
            try:
                st = os.stat(project)
            except OSError:
                continue
            group = str(attrs["Config"].get("User") or "").partition(":")[2]
            gid = int(group) if group.isdigit() else st.st_gid
            note = owner_note(p.uid or 0, gid, project, st.st_uid, st.st_gid, st.st_mode)
            if note:
                click.echo(f"    ! {note}")


def _doctor_services(
    engine: InnerEngine,
    layout: ParentLayout,
    services: tuple[ServiceSpec, ...],
    report: Callable[[bool, str, str, str], None],
) -> None:
    from parent_agent.adapters import services as svc
    from parent_agent.core.services import states

    for s in states(
        services, svc.inspect_all(engine), svc.port_open, svc.waiting_for(engine, layout)
    ):
        title = f"service {s.name}" + (" (MCP)" if s.mcp else "")
        if s.state == "disabled":
            click.echo(f"- {title}: disabled ({s.detail}); workers start without it")
            continue
        if s.state == "waiting":  # its image builds on the host: not a fault
            click.echo(f"… {title}: {s.detail}")
            continue
        detail = s.detail if s.detail.startswith(s.state) else f"{s.state} {s.detail}".strip()
        if s.state in ("exited", "restarting"):
            line = svc.last_log_line(engine, s.name)
            detail += f"; last log: {line}" if line else ""
        fix = f"docker logs {container_name(s.name)} says more; workers start without it"
        report(s.ok, title, detail, fix)


def _doctor_network(engine: InnerEngine, report: Callable[[bool, str, str, str], None]) -> None:
    """The egress boundary: the workers' network, the proxy listening, the firewall."""
    import socket

    from hal_common.egress import GATEWAY, PROXY_PORT, WORKER_NETWORK
    from parent_agent.adapters import firewall
    from parent_agent.adapters.engine import network_fits

    restart = "restart the parent (claudy down && claudy); hal-agent health shows why"
    attrs = engine.network(WORKER_NETWORK)
    fits = attrs is not None and network_fits(attrs)
    detail = f"{WORKER_NETWORK} internal, ICC off" if fits else f"{WORKER_NETWORK} missing or not"
    report(fits, "workers' network", detail + ("" if fits else " internal"), restart)
    try:
        with socket.create_connection((GATEWAY, PROXY_PORT), timeout=0.5):
            listening = True
    except OSError:
        listening = False
    report(listening, "egress proxy", f"{GATEWAY}:{PROXY_PORT}", restart)
    rules = firewall.status()
    ok = bool(rules) and not any(r.startswith("missing") for r in rules)
    report(ok, "firewall", "; ".join(rules) or "no rules for the workers' bridge", restart)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
@click.option(
    "--restart",
    "restart",
    metavar="NAME",
    multiple=True,
    help="Restart this service (one that used up its retries, too).",
)
@pass_parent
def services(p: Parent, as_json: bool, restart: tuple[str, ...]) -> None:
    """The shared services (ChromaDB, Memory Bank, MCP servers): running, and if not, why."""
    from parent_agent.adapters import services as svc
    from parent_agent.core.services import states

    if restart:
        # the loop alone restarts service containers: ask it and wait for its answer
        from parent_agent.adapters import control
        from parent_agent.core.control import RestartServices

        answer = control.ask(p.layout.control_socket, RestartServices(restart))
        if not answer.ok:
            raise HalError(answer.error)
        for error in answer.errors:  # the loop reports them too; only the named ones matter
            log.warning("%s", error)
        click.echo(f"restarted {', '.join(restart)}")
        return
    engine = p.inner()
    cfg = p.config()
    found = states(
        cfg.services, svc.inspect_all(engine), svc.port_open, svc.waiting_for(engine, p.layout)
    )
    if as_json:
        click.echo(ServicesReply(tuple(found)).dumps())
        return
    for s in found:
        mark = "✓" if s.ok else {"disabled": "-", "waiting": "…"}.get(s.state, "✗")
        kind = " MCP" if s.mcp else ""
        click.echo(f"{mark} {s.name:14} {s.state:10} {s.detail}{kind}")
        if s.state in ("exited", "restarting"):
            line = svc.last_log_line(engine, s.name)
            if line:
                click.echo(f"    last log: {line}")


@click.command(hidden=True)
@click.argument(
    "action",
    type=click.Choice(
        ["new-session", "stop", "restart", "shell", "choose", "stats", "next-waiting", "diff"]
    ),
)
@click.option("--client", required=True, help="The tmux client that pressed the key.")
@click.option("--window", default="", help="The window it was pressed in.")
@pass_parent
def key(p: Parent, action: str, client: str, window: str) -> None:
    """What a prefix key does (bound by hal-agent run; see `hal-agent keys`)."""
    ui = p.ui()
    me = shlex.quote(_self())
    c = shlex.quote(client)
    if action == "new-session":
        engine = p.inner()
        recent = sorted(workers.list_workers(engine), key=lambda w: w.created or 0, reverse=True)
        # a project path is shown literally (a label is a tmux format: `#(…)` would run);
        # picking one attaches by name, and attach refuses a project the path policy now does
        items = [
            (
                w.project.replace("#", "##"),
                str(i + 1),
                f'run-shell -b "{me} attach --client {c} {w.name}"',
            )
            for i, w in enumerate(recent[:9])
        ]
        spawn = f"run-shell -b '{me} spawn --client {c} %%'"
        # the typed words reach `spawn` as its arguments: `DIR --task NAME [--from REF]` too
        prompt = f"command-prompt -p 'project directory (or DIR --task NAME):' \"{spawn}\""
        items.append(("another directory…", "o", prompt))
        ui.menu(client, " new session ", items)
    elif action == "choose":
        found = workers.list_workers(p.inner())
        if not found:
            ui.message(client, "no workers yet: prefix + new session key, or hal-agent spawn DIR")
            return
        items = [
            (
                f"{w.name}  ({w.state})",
                str(i + 1) if i < 9 else "",
                f'run-shell -b "{me} attach --client {c} {w.name}"',
            )
            for i, w in enumerate(found)
        ]
        ui.menu(client, " workers ", items)
    elif action == "stats":
        ui.popup(client, f"{me} stats", " worker stats (ctrl-c closes) ")
    elif action == "next-waiting":
        go_next_waiting(p, client, window)
    else:
        if window not in ui.window_names():
            ui.message(client, f"{window or 'this window'} is not a worker window")
            return
        if action == "stop":
            ui.confirm(
                client,
                f"stop worker {window}? (y/n)",
                f'run-shell -b "{me} stop {shlex.quote(window)}"',
            )
        elif action == "restart":
            ui.message(client, f"restarting {window} …")
            restart_worker(p, window, client)
        elif action == "shell":
            open_shell(p, window, client)
        elif action == "diff":
            # a refusal (no git here) stays on screen until a key, not a popup that blinks
            show = f"{me} diff {shlex.quote(window)} || {{ printf '\\n(Enter closes)'; read _; }}"
            ui.popup(client, show, f" {window}: diff (q closes) ")


def _self() -> str:
    return shutil.which("hal-agent") or "hal-agent"
