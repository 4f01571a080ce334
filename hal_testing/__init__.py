"""The test harness: the engine, a parent driven through `claudy`, `hal-agent`'s commands on a
test layout, the agent loop in-process, fake Claude files.

One copy, used by the tests (through `hal_testing.pytest_plugin`, registered in
tests/conftest.py) and by the benchmark (benchmarks/run.py). Not shipped: pyproject's package
list leaves it out.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the checkout: its docs, Dockerfiles, scripts
