"""Runs inside the parent (passed to its python by `docker exec`): times spawns and floors
where they happen, so no host round trip is counted on either side."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import docker

INNER = "unix:///run/hal9000/docker.sock"


def spawn_times(dirs: list[str]) -> list[float]:
    """`hal-agent spawn DIR` → the agent's pid seen inside the worker, for each DIR in turn."""
    client = docker.DockerClient(base_url=INNER)
    out = []
    for d in dirs:
        t0 = time.monotonic()
        res = subprocess.run(
            ["hal-agent", "spawn", d, "--no-window"], capture_output=True, text=True, check=True
        )
        worker = client.containers.get("hal9000-w-" + res.stdout.strip())
        while worker.exec_run(["hal-worker", "pid"]).exit_code != 0:
            pass  # no sleep: the first moment the pid is there is the figure
        out.append(time.monotonic() - t0)
    return out


def bare_run_times(image: str, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.monotonic()
        subprocess.run(
            ["docker", "-H", INNER, "run", "--rm", "--entrypoint", "true", image],
            check=True,
            capture_output=True,
        )
        out.append(time.monotonic() - t0)
    return out


def memory() -> dict[str, float]:
    """RSS (MB) in the parent: its own processes, and per worker its overhead (the shim in
    the parent, docker-init and the tmux server in the worker) and its agent."""
    ps = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,rss=,args="], capture_output=True, text=True, check=True
    ).stdout
    procs: dict[int, tuple[int, float, str]] = {}
    for line in ps.splitlines():
        pid, ppid, rss, args = line.split(None, 3)
        if not args.startswith("ps -eo"):
            procs[int(pid)] = (int(ppid), int(rss) / 1024, args)

    def under_shim(pid: int) -> bool:
        while pid in procs:
            ppid, _, args = procs[pid]
            if "containerd-shim" in args:
                return True
            pid = ppid
        return False

    worker = {pid for pid in procs if under_shim(pid)}
    agents = [
        rss
        for pid, (_, rss, args) in procs.items()
        if pid in worker and args.split()[0] == "claude"
    ]
    shims = [pid for pid, (_, _, args) in procs.items() if "containerd-shim" in args]
    n = max(1, len(shims))
    overhead = sum(procs[p][1] for p in worker if procs[p][2].split()[0] != "claude")
    return {
        "parent_mb": sum(rss for pid, (_, rss, _) in procs.items() if pid not in worker),
        "workers": float(len(shims)),
        "per_worker_overhead_mb": overhead / n,
        "per_agent_mb": sum(agents) / max(1, len(agents)),
    }


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "spawn":
        print(json.dumps(spawn_times(json.loads(sys.argv[2]))))
    elif what == "bare":
        print(json.dumps(bare_run_times(sys.argv[2], int(sys.argv[3]))))
    elif what == "memory":
        print(json.dumps(memory()))
