"""CPU and memory figures computed as `docker stats` computes them."""

from __future__ import annotations

import pytest

from parent_agent.core.usage import cpu_percent, mem_used


def test_cpu_and_memory_as_docker_stats_computes_them() -> None:
    prev = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 1_000},
            "system_cpu_usage": 10_000,
            "online_cpus": 2,
        }
    }
    cur = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 1_500},
            "system_cpu_usage": 12_000,
            "online_cpus": 2,
        },
        "memory_stats": {"usage": 100, "stats": {"total_inactive_file": 30}},
    }
    assert cpu_percent(None, cur) is None
    assert cpu_percent(prev, cur) == pytest.approx(50.0)
    assert mem_used(cur) == 70
