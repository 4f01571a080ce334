"""The cgroup reader on trees laid out as the kernel does (v1 and v2), and on this host."""

from __future__ import annotations

import os
from pathlib import Path

from parent_agent.adapters.cgroup import cgroup_dirs, raw_stats
from parent_agent.core.usage import usage


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_v1_paths_and_figures(tmp_path: Path) -> None:
    text = (
        "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n"
        "1:blkio:/docker/abc\n"
    )
    dirs = cgroup_dirs(text, tmp_path)
    assert dirs["cpuacct"] == tmp_path / "cpu,cpuacct" / "docker/abc"
    assert dirs["memory"] == tmp_path / "memory" / "docker/abc"
    _write(
        tmp_path,
        {
            "memory/docker/abc/memory.usage_in_bytes": "1000\n",
            "memory/docker/abc/memory.limit_in_bytes": "4096\n",
            "memory/docker/abc/memory.stat": "cache 300\ntotal_inactive_file 200\n",
            "cpu,cpuacct/docker/abc/cpuacct.usage": "5000000\n",
            "pids/docker/abc/pids.current": "7\n",
            "blkio/docker/abc/blkio.throttle.io_service_bytes": (
                "8:0 Read 10\n8:0 Write 20\nTotal 30\n"
            ),
        },
    )
    proc = tmp_path / "proc-cgroup"
    proc.write_text(text)
    raw = raw_stats_from(proc, tmp_path, 1_000_000_000)
    assert raw is not None
    u = usage(None, raw)
    assert (u.mem_used, u.mem_limit, u.pids, u.blk_read, u.blk_write) == (800, 4096, 7, 10, 20)
    _write(tmp_path, {"cpu,cpuacct/docker/abc/cpuacct.usage": "505000000\n"})
    later = raw_stats_from(proc, tmp_path, 2_000_000_000)
    assert later is not None
    assert usage(raw, later).cpu_pct == 50.0  # half a core over one second


def test_v2_paths_and_figures(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "cgroup.controllers": "cpu memory pids io\n",
            "system.slice/x/memory.current": "2000\n",
            "system.slice/x/memory.max": "max\n",
            "system.slice/x/memory.stat": "inactive_file 500\n",
            "system.slice/x/cpu.stat": "usage_usec 10\n",
            "system.slice/x/pids.current": "3\n",
            "system.slice/x/io.stat": "8:0 rbytes=5 wbytes=6 rios=1 wios=1\n",
        },
    )
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/system.slice/x\n")
    raw = raw_stats_from(proc, tmp_path, 1)
    assert raw is not None
    u = usage(None, raw)
    assert (u.mem_used, u.mem_limit, u.pids, u.blk_read, u.blk_write) == (1500, 0, 3, 5, 6)


def test_unreadable_gives_none_so_the_engine_is_asked(tmp_path: Path) -> None:
    assert raw_stats(2**22 + 12345, tmp_path) is None  # no such process
    proc = tmp_path / "proc-cgroup"
    proc.write_text("3:memory:/docker/gone\n")
    assert raw_stats_from(proc, tmp_path, 1) is None


def test_this_process_reads_on_this_host() -> None:
    raw = raw_stats(os.getpid())
    if raw is not None:  # hosts differ; when readable, the figures are sane
        assert usage(None, raw).mem_used >= 0


def raw_stats_from(proc_cgroup: Path, root: Path, now_ns: int) -> dict[str, object] | None:
    """raw_stats for a process whose /proc/PID/cgroup is the test's file."""
    proc = root / "proc"
    (proc / "1").mkdir(parents=True, exist_ok=True)
    (proc / "1" / "cgroup").write_text(proc_cgroup.read_text())
    return raw_stats(1, root, now_ns, proc)
