#!/usr/bin/env python3
"""Save-to-callback latency of the config watcher, against floors measured in the same run.

    .venv/bin/python scripts/bench_config_watch.py [SAVES]

For each observer mode it saves the config SAVES times (alternating an in-place write and a
rename over the file, as editors do), and measures from the end of each save to the moment
`deliver` is called. Floors: the debounce (the watcher waits that long on purpose) plus the
raw event latency of a bare watchdog observer on the same directory. Prints median and p90,
and the median's ratio to its floor.
"""

from __future__ import annotations

import os
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from hal_common.config import WatchConfig
from parent_agent.adapters.config_watch import DEBOUNCE, ConfigChanged, ConfigEvent, ConfigWatcher


def save(path: Path, i: int) -> float:
    text = f'[worker]\nmemory = "{i + 1}g"\n'
    if i % 2:
        tmp = path.with_name(".config.toml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)
    return time.monotonic()


def raw_floor(directory: Path, saves: int) -> list[float]:
    """Latency of a bare native observer: the first event after each save."""
    got: queue.Queue[float] = queue.Queue()

    class Stamp(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if os.fsdecode(event.src_path).endswith("raw.toml"):
                got.put(time.monotonic())

    observer = Observer()
    observer.schedule(Stamp(), str(directory))
    observer.start()
    out = []
    try:
        for i in range(saves):
            t0 = time.monotonic()
            (directory / "raw.toml").write_text(str(i))
            out.append(got.get(timeout=5) - t0)
            while not got.empty():  # modify + close: keep only the first
                got.get_nowait()
    finally:
        observer.stop()
        observer.join()
    return out


def measure(directory: Path, mode: str, saves: int) -> list[float]:
    events: queue.Queue[tuple[float, ConfigEvent]] = queue.Queue()
    path = directory / mode / "config.toml"
    watcher = ConfigWatcher(
        path, lambda ev: events.put((time.monotonic(), ev)), watch=WatchConfig(mode), env={}
    )
    watcher.start()
    out = []
    try:
        for i in range(saves):
            t0 = save(path, i)
            t1, ev = events.get(timeout=10)
            if not isinstance(ev, ConfigChanged):
                raise SystemExit(f"unexpected event: {ev}")
            out.append(t1 - t0)
    finally:
        watcher.stop()
    return out


def main() -> None:
    saves = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        raw = statistics.median(raw_floor(directory, saves))
        print(f"raw native event: median {raw * 1e6:.0f} µs over {saves} writes")
        print(f"debounce: {DEBOUNCE * 1000:.0f} ms; poll interval: 1000 ms")
        for mode in ("auto", "inotify", "poll"):
            lat = sorted(measure(directory, mode, saves))
            median, p90 = statistics.median(lat), lat[int(0.9 * (len(lat) - 1))]
            floor = DEBOUNCE + raw
            print(
                f"{mode:8} median {median * 1000:6.1f} ms  p90 {p90 * 1000:6.1f} ms  "
                f"max {lat[-1] * 1000:6.1f} ms  median/floor {median / floor:4.2f} "
                f"(floor = debounce + raw event = {floor * 1000:.1f} ms)"
            )


if __name__ == "__main__":
    main()
