"""Per-worker resource figures from the engine's raw stats samples (pure)."""

from __future__ import annotations

from typing import Any

from hal_common.protocol import WorkerUsage

# One worker's figures: the value `stats --json` prints (hal_common.protocol) is the model's.
Usage = WorkerUsage


def _cpu_totals(raw: dict[str, Any]) -> tuple[int, int, int]:
    cpu = raw.get("cpu_stats") or {}
    online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    return (
        int(cpu.get("cpu_usage", {}).get("total_usage", 0)),
        int(cpu.get("system_cpu_usage", 0)),
        int(online),
    )


def cpu_percent(prev: dict[str, Any] | None, cur: dict[str, Any]) -> float | None:
    """CPU % between two samples, as `docker stats` computes it (100 % = one core)."""
    if prev is None:
        return None
    c_now, s_now, online = _cpu_totals(cur)
    c_then, s_then, _ = _cpu_totals(prev)
    d_cpu, d_sys = c_now - c_then, s_now - s_then
    if d_cpu < 0 or d_sys <= 0:
        return 0.0
    return d_cpu / d_sys * online * 100.0


def mem_used(raw: dict[str, Any]) -> int:
    """Usage less the page cache (cgroup v1 `cache`, v2 `inactive_file`), as `docker stats`."""
    mem = raw.get("memory_stats") or {}
    stats = mem.get("stats") or {}
    cache = stats.get("total_inactive_file", stats.get("inactive_file", stats.get("cache", 0)))
    return max(0, int(mem.get("usage", 0)) - int(cache))


def usage(prev: dict[str, Any] | None, cur: dict[str, Any]) -> Usage:
    nets = (cur.get("networks") or {}).values()
    blk = (cur.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    return Usage(
        cpu_pct=cpu_percent(prev, cur),
        mem_used=mem_used(cur),
        mem_limit=int((cur.get("memory_stats") or {}).get("limit", 0)),
        pids=int((cur.get("pids_stats") or {}).get("current", 0)),
        net_rx=sum(int(n.get("rx_bytes", 0)) for n in nets),
        net_tx=sum(int(n.get("tx_bytes", 0)) for n in nets),
        blk_read=sum(int(b.get("value", 0)) for b in blk if b.get("op", "").lower() == "read"),
        blk_write=sum(int(b.get("value", 0)) for b in blk if b.get("op", "").lower() == "write"),
    )


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}GiB"
