"""Runs inside the parent (passed to its python by `docker exec`): times spawns and floors
where they happen, so no host round trip is counted on either side."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import docker

from hal_common import labels
from hal_common.egress import GATEWAY, WORKER_NETWORK
from parent_agent.core.services import is_wrapper
from parent_agent.core.tmux import worker_window_command

INNER = "unix:///run/hal9000/docker.sock"


SETTLE_WINDOW_S = 0.25
SETTLE_BUSY = 0.10  # of one core: a Claude Code that has drawn its screen and waits
SETTLE_MAX_S = 20.0


def tree_ticks(root: int) -> int:
    """Clock ticks used so far by `root` and every process under it that still runs."""
    procs = processes()
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += cpu_ticks(pid)
        todo.extend(kids.get(pid, []))
    return total


def settle(root: int) -> float:
    """Wait until the container whose init is `root` has finished starting: its processes
    use at most SETTLE_BUSY of a core over SETTLE_WINDOW_S (at most SETTLE_MAX_S); the
    seconds waited. A spawn timed right after another competes with that worker's Claude
    Code starting (1-2 s of CPU), which no bare `docker run true` floor leaves behind."""
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.monotonic()
    before = tree_ticks(root)
    while time.monotonic() - t0 < SETTLE_MAX_S:
        time.sleep(SETTLE_WINDOW_S)
        now = tree_ticks(root)
        if (now - before) / hz <= SETTLE_BUSY * SETTLE_WINDOW_S:
            break
        before = now
    return time.monotonic() - t0


def spawn_times(dirs: list[str]) -> dict[str, list[float]]:
    """`hal-agent spawn DIR` → the agent's pid seen inside the worker, for each DIR in turn,
    each from a settled machine (the worker before it done starting: `settle`), and the
    seconds each settle waited."""
    client = docker.DockerClient(base_url=INNER)
    out, waits = [], []
    for d in dirs:
        t0 = time.monotonic()
        res = subprocess.run(
            ["hal-agent", "spawn", d, "--no-window"], capture_output=True, text=True, check=True
        )
        worker = client.containers.get("hal9000-w-" + res.stdout.strip())
        while worker.exec_run(["hal-worker", "pid"]).exit_code != 0:
            pass  # no sleep: the first moment the pid is there is the figure
        out.append(time.monotonic() - t0)
        worker.reload()
        waits.append(settle(int(worker.attrs["State"]["Pid"])))
    return {"times": out, "settled": waits}


def bare_run_times(image: str, reps: int) -> list[float]:
    """A bare `docker run --rm` on the same kind of network as a worker's: the internal one
    (a veth pair and an address each), with DNS at the gateway."""
    out = []
    net = ["--network", WORKER_NETWORK, "--dns", GATEWAY]
    for _ in range(reps):
        t0 = time.monotonic()
        subprocess.run(
            ["docker", "-H", INNER, "run", "--rm", *net, "--entrypoint", "true", image],
            check=True,
            capture_output=True,
        )
        out.append(time.monotonic() - t0)
    return out


def hook_delays(sessions: list[str], reps: int) -> dict[str, list[float]]:
    """Row 10: a hook event inside a worker (its `hal-worker hook`, as Claude Code runs it)
    → the state it means in `hal-agent ls --json`, polled; the floor is one `ls --json`
    (the poll's own grain). Prompt and stop alternate, so each event changes the state."""
    client = docker.DockerClient(base_url=INNER)
    delays, floor = [], []
    for i in range(reps):
        name = sessions[i % len(sessions)]
        event, want = ("UserPromptSubmit", "working") if i % 2 == 0 else ("Stop", "idle")
        payload = json.dumps({"hook_event_name": event, "session_id": None})
        worker = client.containers.get("hal9000-w-" + name)
        run = ["docker", "-H", INNER, "exec", "-i", worker.name or "", "hal-worker", "hook"]
        subprocess.run(run, input=payload, text=True, check=True, capture_output=True)
        t0 = time.monotonic()
        while True:
            t1 = time.monotonic()
            out = subprocess.run(
                ["hal-agent", "ls", "--json"], capture_output=True, text=True, check=True
            ).stdout
            floor.append(time.monotonic() - t1)
            row = next(r for r in json.loads(out) if r["name"] == name)
            if (row.get("agent") or {}).get("state") == want:
                break
            if time.monotonic() - t0 > 30:
                raise SystemExit(f"{name}: {event} never showed as {want}: {row}")
        delays.append(time.monotonic() - t0)
    return {"delays": delays, "floor": floor}


def own_processes(procs: Procs) -> dict[int, str]:
    """The parent's own processes: the agent's loop, the dashboard (and its restart loop),
    the tmux server. Not dockerd, containerd, the workers, the services or the `docker
    exec` clients of the windows (the engine's, not ours)."""
    out = {}
    for pid, (_, _, args) in procs.items():
        if "hal-agent run" in args or "hal-agent dashboard" in args:
            out[pid] = "agent" if "hal-agent run" in args else "dashboard"
        elif "tmux" in args.split()[0] and "/run/hal9000/tmux.sock" in args:
            # the server names itself `tmux: server (/run/hal9000/tmux.sock)`
            out[pid] = "tmux"
    return out


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks `pid` has used (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def idle_cpu(seconds: float) -> dict[str, float]:
    """Row 11: the CPU the parent's own processes use over `seconds` while the workers idle,
    as a percentage of one core, in all and per kind."""
    mine = own_processes(processes())
    before = {pid: cpu_ticks(pid) for pid in mine}
    time.sleep(seconds)
    hz = os.sysconf("SC_CLK_TCK")
    per: dict[str, float] = {}
    for pid, kind in mine.items():
        used = max(0, cpu_ticks(pid) - before[pid]) / hz
        per[kind] = per.get(kind, 0.0) + used / seconds * 100
    return {"total": sum(per.values()), **per}


Procs = dict[int, tuple[int, float, str]]


def processes() -> Procs:
    """pid → (ppid, RSS in MB, argv) of every process the parent sees."""
    ps = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,rss=,args="], capture_output=True, text=True, check=True
    ).stdout
    procs: Procs = {}
    for line in ps.splitlines():
        pid, ppid, rss, args = line.split(None, 3)
        if not args.startswith("ps -eo"):
            procs[int(pid)] = (int(ppid), int(rss) / 1024, args)
    return procs


def shim_of(procs: Procs, pid: int) -> int | None:
    """The containerd shim a process runs under (its container), if any."""
    while pid in procs:
        ppid, _, args = procs[pid]
        if "containerd-shim" in args:
            return pid
        pid = ppid
    return None


def service_shims(procs: Procs) -> dict[int, str]:
    """shim pid → service name, for the shared services' containers."""
    client = docker.DockerClient(base_url=INNER)
    ids = {
        c.id: c.labels.get(labels.SESSION, "")
        for c in client.containers.list(filters=labels.managed_filter("service"))
    }
    out = {}
    for pid, (_, _, args) in procs.items():
        if "containerd-shim" in args:
            words = args.split()
            cid = words[words.index("-id") + 1] if "-id" in words else ""
            if cid in ids:
                out[pid] = ids[cid]
    return out


def kind(args: str) -> str:
    """What a process of the parent is, for the memory breakdown."""
    words = args.split()
    name = words[0].rsplit("/", 1)[-1] if words else ""
    if name.startswith("python") and len(words) > 2 and words[1].endswith("/hal-agent"):
        return "agent" if words[2] == "run" else f"hal-agent {words[2]}"
    if name == "docker" and "exec" in words:
        return "docker exec clients"
    if name.startswith("python") and any(w.endswith("/exec_tty.py") for w in words[1:5]):
        return "window exec clients"  # a worker window's attach (parent_agent/core/tmux.py)
    return name.removesuffix(":")


def breakdown(procs: Procs) -> dict[str, float]:
    """RSS (MB) of the parent's processes outside any container, per kind."""
    out: dict[str, float] = {}
    for pid, (_, rss, args) in procs.items():
        if shim_of(procs, pid) is None:
            k = kind(args)
            out[k] = out.get(k, 0.0) + rss
    return out


def memory() -> dict[str, object]:
    """RSS (MB) in the parent: its own processes, and per worker its overhead (the shim in
    the parent, docker-init and the tmux server in the worker) and its agent. The shared
    services' containers are neither (see `services`)."""
    procs = processes()
    services = service_shims(procs)
    worker = {pid for pid in procs if (s := shim_of(procs, pid)) is not None and s not in services}
    agents = [
        rss
        for pid, (_, rss, args) in procs.items()
        if pid in worker and args.split()[0] == "claude"
    ]
    shims = [
        pid
        for pid, (_, _, args) in procs.items()
        if "containerd-shim" in args and pid not in services
    ]
    n = max(1, len(shims))
    overhead = sum(procs[p][1] for p in worker if procs[p][2].split()[0] != "claude")
    parts = breakdown(procs)
    return {
        "parent_mb": sum(rss for pid, (_, rss, _) in procs.items() if shim_of(procs, pid) is None),
        "engine_mb": parts.get("dockerd", 0.0) + parts.get("containerd", 0.0),
        "exec_clients_mb": parts.get("docker exec clients", 0.0)
        + parts.get("window exec clients", 0.0),
        "parts": parts,
        "workers": float(len(shims)),
        "per_worker_overhead_mb": overhead / n,
        "per_agent_mb": sum(agents) / max(1, len(agents)),
    }


def bare_sleep(image: str, n: int) -> dict[str, float]:
    """Row 5b's floor: N bare `docker run -d --init … sleep infinity` containers in the
    inner engine; RSS (MB) per container of its shim and docker-init (the overhead the
    issue names), and of the sleep apart. Removed afterwards."""
    names = [f"halbench-sleep-{os.getpid()}-{i}" for i in range(n)]
    try:
        for name in names:
            subprocess.run(
                ["docker", "-H", INNER, "run", "-d", "--init", "--name", name,
                 "--network", "none", "--entrypoint", "sleep", image, "infinity"],
                check=True, capture_output=True,
            )  # fmt: skip
        time.sleep(2)
        ids = subprocess.run(
            ["docker", "-H", INNER, "inspect", "-f", "{{.Id}}", *names],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        procs = processes()
        shims = {
            pid
            for pid, (_, _, args) in procs.items()
            if "containerd-shim" in args and any(f"-id {i}" in args for i in ids)
        }
        mine = [pid for pid in procs if shim_of(procs, pid) in shims]
        sleep = sum(procs[p][1] for p in mine if procs[p][2].split()[0] == "sleep")
        total = sum(procs[p][1] for p in mine)
        return {"per_container_mb": (total - sleep) / n, "sleep_mb": sleep / n}
    finally:
        subprocess.run(["docker", "-H", INNER, "rm", "-f", *names], capture_output=True)


def attach_cost(container: str) -> dict[str, float]:
    """What one worker window adds while it shows the worker: the window's own attach client
    in the parent (the command the parent's tmux window runs, parent_agent/core/tmux.py),
    the docker CLI's `docker exec -it` beside it for comparison, and the tmux client that
    `hal-worker attach` leaves in the worker. Each measured on a tmux server of its own."""
    window = shlex.split(worker_window_command(container, INNER))[1:]  # without `exec`
    cli = ["docker", "-H", INNER, "exec", "-it", container, "hal-worker", "attach"]
    out: dict[str, float] = {}
    for key, argv in (("window_client_mb", window), ("docker_exec_mb", cli)):
        sock = f"/tmp/halbench-attach-{os.getpid()}.sock"
        subprocess.run(
            ["tmux", "-S", sock, "new-session", "-d", "-x", "120", "-y", "40", *argv], check=True
        )
        try:
            time.sleep(3)
            procs = processes()
            pane = subprocess.run(
                ["tmux", "-S", sock, "display", "-p", "-t", "0", "#{pane_pid}"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            out[key] = procs[int(pane)][1] if pane.isdigit() and int(pane) in procs else 0.0
            out["worker_tmux_client_mb"] = sum(
                rss
                for pid, (_, rss, args) in procs.items()
                if args.startswith("tmux") and "attach-session" in args and shim_of(procs, pid)
            )
        finally:
            subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
            # an exec leaves its process in the worker when its client goes: end it
            time.sleep(0.5)
            procs = processes()
            for pid, (_, _, args) in procs.items():
                if args.startswith("tmux") and "attach-session" in args and shim_of(procs, pid):
                    os.kill(pid, 15)
    return out


def server(args: str) -> bool:
    """The server itself: neither the container's shim nor a wrapper (health's own rule)."""
    return "containerd-shim" not in args and not is_wrapper(args)


def services() -> dict[str, dict[str, float]]:
    """Per shared service: RSS (MB) of its whole container (shim included), and of the one
    server process a per-worker copy would be (for an MCP server: the stdio server behind
    the bridge, without the bridge)."""
    procs = processes()
    shims = service_shims(procs)
    out: dict[str, dict[str, float]] = {}
    for shim, name in shims.items():
        mine = [pid for pid in procs if shim_of(procs, pid) == shim]
        total = sum(procs[p][1] for p in mine)
        servers = [procs[p][1] for p in mine if server(procs[p][2])]
        out[name] = {"total_mb": total, "server_mb": max(servers, default=0.0)}
    return out


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "spawn":
        print(json.dumps(spawn_times(json.loads(sys.argv[2]))))
    elif what == "bare":
        print(json.dumps(bare_run_times(sys.argv[2], int(sys.argv[3]))))
    elif what == "memory":
        print(json.dumps(memory()))
    elif what == "bare-sleep":
        print(json.dumps(bare_sleep(sys.argv[2], int(sys.argv[3]))))
    elif what == "attach-cost":
        print(json.dumps(attach_cost(sys.argv[2])))
    elif what == "services":
        print(json.dumps(services()))
    elif what == "idle-cpu":
        print(json.dumps(idle_cpu(float(sys.argv[2]))))
    elif what == "hook":
        print(json.dumps(hook_delays(json.loads(sys.argv[2]), int(sys.argv[3]))))
