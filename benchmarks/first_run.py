"""The first run: `claudy DIR` on an engine with no hal-9000 image → Claude Code's first screen.

    sudo scripts/bench-first-run          (makes a fresh private engine; see its help)
    DOCKER_HOST=FRESH python -m benchmarks.first_run [--out bench-results/first-run.json]

The engine must hold no hal9000 image but the base (`hal9000/base:bookworm`, standing for the
public base image a user pulls). claudy runs in a host tmux pane, as a user's terminal runs it;
the pane is read with capture-pane until Claude Code's first screen shows. Each line claudy
prints (building, built, loading, parent up) is stamped with the time it first showed, and
after the screen, the time until the shared services answer (the services image builds in
the background) is taken too. It builds every image from Debian, PyPI and npm: opt-in, not
part of `.ci/run`, and a few minutes long.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from docker import DockerClient

from hal_testing import engine
from hal_testing.host import HostParent
from host_shim.core.build_context import OFFLINE_BASE

# on the visible screen only (the build's output above mentions "Claude Code" too)
CLAUDE_SCREEN = ("Claude Code v", "Welcome to Claude", "Choose the text style", "Let's get started")
EVENTS = (
    (re.compile(r"^building (\S+)"), "build {} start"),
    (re.compile(r"^built (\S+) \("), "build {} done"),
    (re.compile(r"^parent (\S+) is up"), "parent up"),
    (re.compile(r"loading (\S+) into the parent"), "load {} start"),
    (re.compile(r"services image (\S+) is (?:building|loading)"), "background {}"),
)
UID = GID = 4321


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    events: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        if name not in self.events:
            self.events[name] = round(time.monotonic() - self.t0, 1)
            print(f"  {self.events[name]:7.1f} s  {name}", flush=True)  # as it happens

    def read(self, screen: str) -> None:
        for line in screen.splitlines():
            text = line.strip()
            for pattern, name in EVENTS:
                m = pattern.search(text)
                if m:
                    self.mark(name.format(m.group(1)))


def fresh(client: DockerClient) -> None:
    found = sorted(
        t
        for i in client.images.list()
        for t in i.tags
        if t.startswith("hal9000/") and t != OFFLINE_BASE
    )
    if found:
        sys.exit(f"not a fresh engine: it holds {', '.join(found)} (a first run builds them)")
    if not any(OFFLINE_BASE in i.tags for i in client.images.list()):
        sys.exit(f"the engine has no {OFFLINE_BASE}: load one (docker save | docker load) first")


def capture(tmux: list[str], *args: str) -> str:
    out = subprocess.run(
        [*tmux, "capture-pane", "-p", "-J", *args, "-t", "=user:0.0"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="bench-results/first-run.json")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument(
        "--python", help="run claudy with this interpreter (another checkout's), for a before/after"
    )
    args = ap.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    host = os.environ["DOCKER_HOST"]
    client = engine.connect(host)
    fresh(client)
    base = Path(f"/tmp/halfirst-{uuid.uuid4().hex[:6]}")
    hp = HostParent.create(client, host, base, "hal9000-first", uid=UID, gid=GID)
    proj = hp.project("first")
    sock = f"halfirst-{uuid.uuid4().hex[:6]}"
    tmux = ["tmux", "-L", sock]
    line = hp.claudy_argv(str(proj))
    if args.python:
        line = line.replace(sys.executable, args.python)
    tl = Timeline()
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-c",
            "/",
            "-s",
            "user",
            "-x",
            "220",
            "-y",
            "50",
            f"{line}; sleep 3600",
        ],
        check=True,
    )
    screen = ""
    try:
        while True:
            screen = capture(tmux, "-S", "-")
            tl.read(screen)
            if any(m in capture(tmux) for m in CLAUDE_SCREEN):
                tl.mark("claude screen")
                break
            if time.monotonic() - tl.t0 > args.timeout:
                raise SystemExit(
                    f"no Claude Code screen in {args.timeout:.0f} s:\n{screen[-3000:]}"
                )
            time.sleep(0.2)
        # the shared services: built (in the background, or before), loaded, answering
        while time.monotonic() - tl.t0 < args.timeout:
            if any("hal9000/services:latest" in i.tags for i in client.images.list()):
                tl.mark("services image built")
            found = hp.services() if hp.dclient.containers.list(filters={"name": hp.name}) else None
            if found and all(s["ok"] for s in found):
                tl.mark("services up")
                break
            time.sleep(1)
        (Path(args.out).with_suffix(".screen.txt")).write_text(capture(tmux, "-S", "-"))
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
        hp.down()
    ordered = sorted(tl.events.items(), key=lambda kv: kv[1])
    print(f"first run on {host} (fresh engine, {OFFLINE_BASE} only)")
    prev = 0.0
    for name, t in ordered:
        print(f"  {t:7.1f} s  (+{t - prev:6.1f})  {name}")
        prev = t
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"host": host, "events": dict(ordered)}, indent=1) + "\n")
    print(f"json: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
