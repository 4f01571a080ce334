"""Sampling worker stats from the engine (adapter), for `stats` and the dashboard."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hal_common.errors import HalError
from parent_agent.adapters.cgroup import raw_stats
from parent_agent.adapters.engine import InnerEngine
from parent_agent.core.model import Worker
from parent_agent.core.usage import Usage, usage

log = logging.getLogger(__name__)


class Sampler:
    """Keeps the previous raw sample per worker, so each call can give CPU % at once."""

    def __init__(self, engine: InnerEngine) -> None:
        self.engine = engine
        self.prev: dict[str, dict[str, Any]] = {}
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="stats")

    def _raw(self, w: Worker) -> dict[str, Any] | None:
        """The kernel's figures when its cgroup files can be read, else the engine's."""
        if w.pid and (raw := raw_stats(w.pid)) is not None:
            return raw
        try:
            return self.engine.stats(w.container)
        except HalError as e:
            log.debug("stats of %s: %s", w.container, e)
            return None

    def sample(self, running: list[Worker]) -> dict[str, Usage]:
        names = [w.container for w in running]
        raws = dict(zip(names, self.pool.map(self._raw, running), strict=True))
        out: dict[str, Usage] = {}
        for w in running:
            raw = raws.get(w.container)
            if raw is None:
                continue
            out[w.name] = usage(self.prev.get(w.container), raw)
            self.prev[w.container] = raw
        for gone in set(self.prev) - set(names):
            del self.prev[gone]
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class BackgroundSampler:
    """Samples in its own thread, so a frame never waits on the engine's slow stats calls
    (about a second each on dockerd 20.10, even one-shot); frames show the latest sample.

    It samples only while wanted: the figures are for the dashboard, so the loop `pause`s it
    while nobody looks at it (the thread then sleeps until the next `want`)."""

    def __init__(self, engine: InnerEngine, interval: float) -> None:
        self.sampler = Sampler(engine)
        self.interval = interval
        self.running: list[Worker] = []
        self.latest: dict[str, Usage] = {}
        self.active = False
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="stats-sampler", daemon=True)
        self.thread.start()

    def want(self, running: list[Worker]) -> dict[str, Usage]:
        """Tell it which workers run now (and to sample them); get the latest figures."""
        with self.lock:
            self.running = running
            if not self.active:
                self.active = True
                self.wake.set()
            return dict(self.latest)

    def pause(self) -> dict[str, Usage]:
        """Stop sampling until the next `want`; the latest figures (kept as they are)."""
        with self.lock:
            self.active = False
            self.wake.clear()
            return dict(self.latest)

    def _loop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                running, active = list(self.running), self.active
            if not active:
                self.wake.wait()
                continue
            fresh = self.sampler.sample(running)
            with self.lock:
                self.latest = fresh
            self.stop.wait(self.interval)

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.thread.join()
        self.sampler.close()
