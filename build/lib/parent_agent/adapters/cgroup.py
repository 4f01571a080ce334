"""Worker stats read from the kernel's cgroup files, in the shape of the engine's stats.

The engine answers a stats call in about a second (dockerd 20.10, even one-shot), and 50
workers sampled every second keep it busy enough to slow every spawn. The same figures are
a few file reads away: /proc/PID/cgroup names each controller's directory, cgroup v1 or v2.
None when the files can't be read (another cgroup namespace, say): the caller asks the engine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

ROOT = Path("/sys/fs/cgroup")


def cgroup_dirs(proc_cgroup: str, root: Path = ROOT) -> dict[str, Path]:
    """Controller → directory, from the text of /proc/PID/cgroup (v2: key '')."""
    out: dict[str, Path] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        rel = path.lstrip("/")
        if not controllers:
            out[""] = (
                root / rel if (root / "cgroup.controllers").exists() else root / "unified" / rel
            )
            continue
        for c in controllers.split(","):
            out[c] = root / controllers / rel
    return out


def _int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else (0 if text == "max" else None)


def _kv(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


def raw_stats(
    pid: int, root: Path = ROOT, now_ns: int | None = None, proc: Path = Path("/proc")
) -> dict[str, Any] | None:
    """A dict shaped like the engine's stats for the container whose init is `pid`."""
    try:
        dirs = cgroup_dirs((proc / str(pid) / "cgroup").read_text(), root)
    except OSError:
        return None
    now = time.monotonic_ns() if now_ns is None else now_ns
    ncpu = os.cpu_count() or 1
    if "memory" in dirs and "cpuacct" in dirs:  # cgroup v1
        mem, cpu = dirs["memory"], dirs["cpuacct"]
        usage, limit = _int(mem / "memory.usage_in_bytes"), _int(mem / "memory.limit_in_bytes")
        cpu_ns = _int(cpu / "cpuacct.usage")
        stats = _kv(mem / "memory.stat")
        pids = _int(dirs["pids"] / "pids.current") if "pids" in dirs else 0
        blk = (
            _kv_blkio(dirs["blkio"] / "blkio.throttle.io_service_bytes") if "blkio" in dirs else {}
        )
    elif "" in dirs:  # cgroup v2
        d = dirs[""]
        usage, limit = _int(d / "memory.current"), _int(d / "memory.max")
        cpu_us = _kv(d / "cpu.stat").get("usage_usec")
        cpu_ns = None if cpu_us is None else cpu_us * 1000
        stats = _kv(d / "memory.stat")
        pids = _int(d / "pids.current")
        io = [_kv_io(line) for line in _lines(d / "io.stat")]
        blk = {"read": sum(r for r, _ in io), "write": sum(w for _, w in io)}
    else:
        return None
    if usage is None or cpu_ns is None:
        return None
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}, "system_cpu_usage": now * ncpu,
                      "online_cpus": ncpu},
        "memory_stats": {"usage": usage, "limit": limit or 0, "stats": stats},
        "pids_stats": {"current": pids or 0},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"op": "read", "value": blk.get("read", 0)},
            {"op": "write", "value": blk.get("write", 0)}]},
    }  # fmt: skip


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _kv_blkio(path: Path) -> dict[str, int]:
    out = {"read": 0, "write": 0}
    for line in _lines(path):
        parts = line.split()
        if len(parts) == 3 and parts[1].lower() in out and parts[2].isdigit():
            out[parts[1].lower()] += int(parts[2])
    return out


def _kv_io(line: str) -> tuple[int, int]:
    fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    return int(fields.get("rbytes", 0)), int(fields.get("wbytes", 0))
