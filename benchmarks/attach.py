"""Rows 3 and 12: warm attaches timed against their floor, the same way on a local parent and
on one over ssh.

Each round runs the floor once, then one attach: `claudy …` in a window of a terminal's tmux
until a new client shows in the parent's tmux. Both after the same pause (QUIET_S), and the
next round only once this one has left (its claudy process gone, its view reaped), as each
floor run ends before the next starts. Taking turns keeps the two under the same drift.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.core import MissingMeasurement, poll
from hal_testing.host import HostParent

# A pause before each run, ours and the floor's alike, so that neither starts while the
# engine still tears down the exec before it (a user does not reattach within ms)
QUIET_S = 0.5


@dataclass(frozen=True)
class ParentTmux:
    """The parent's tmux server, asked from the host through /proc (`direct`: a tmux client
    costs a few ms, where an exec into the parent costs as much as the floor and loads the
    engine while it is measured); through the parent's exec where that does not answer."""

    direct: list[str]
    parent: HostParent

    def listed(self, what: str, fmt: str, *target: str) -> set[str]:
        found = subprocess.run(
            [*self.direct, what, *target, "-F", fmt], capture_output=True, text=True, check=False
        )
        if found.returncode == 0:
            return set(found.stdout.split())
        return set(self.parent.tmux(what, *target, "-F", fmt)[1].split())

    def clients(self) -> set[str]:
        return self.listed("list-clients", "#{client_name}")

    def views(self) -> set[str]:
        return self.listed("list-sessions", "#{session_name}")


def warm_attaches(
    tmux: ParentTmux,
    claudy: list[str],
    floor_argv: list[str],
    floor_env: Mapping[str, str] | None,
    reps: int,
    shown: Callable[[], bool],
    attach_timeout: float,
) -> tuple[list[float], list[float], int]:
    """`reps` rounds of the floor (`floor_argv`) and of `claudy` (the words a terminal's
    shell execs): their seconds, and how many rounds first waited over a second for the
    parent to show the window again (`shown`; tmux 3.3a's server in the parent can die when
    a view's client goes, and the loop brings it back)."""
    sock = Path(tempfile.mkdtemp(prefix="halb-t-")) / "t.sock"
    term = ["tmux", "-S", str(sock)]
    subprocess.run([*term, "new-session", "-d", "-x", "120", "-y", "40"], check=True)

    def gone(pid: int, views: set[str]) -> bool:
        return not Path(f"/proc/{pid}").exists() and tmux.views() <= views

    times: list[float] = []
    floor: list[float] = []
    waits = 0
    try:
        for _ in range(reps):
            time.sleep(QUIET_S)
            t0 = time.monotonic()
            subprocess.run(floor_argv, env=floor_env, check=True)
            floor.append(time.monotonic() - t0)
            waits += poll(shown, 60) > 1
            before, views = tmux.clients(), tmux.views()
            time.sleep(QUIET_S)
            t0 = time.monotonic()
            pid = subprocess.run(
                [*term, "new-window", "-d", "-P", "-F", "#{pane_pid}", "--", *claudy],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            while not tmux.clients() - before:
                if time.monotonic() - t0 > attach_timeout:
                    raise MissingMeasurement(f"claudy did not attach in {attach_timeout:.0f}s")
                time.sleep(0.005)
            times.append(time.monotonic() - t0)
            subprocess.run([*term, "kill-window", "-t", ":1"], check=True)
            # docker exec leaves the client running when its terminal goes; detach it
            for name in tmux.clients() - before:
                tmux.parent.tmux("detach-client", "-t", name)
            poll(lambda pid=int(pid), views=views: gone(pid, views), 10, 0.02)  # type: ignore[misc]
    finally:
        subprocess.run([*term, "kill-server"], check=False)
        shutil.rmtree(sock.parent, ignore_errors=True)
    return times, floor, waits
