"""Rows 12 and 13: a parent on another engine, over ssh (issue 16).

The remote engine is the tests' "remote host" (hal_testing/remote_host.py): a container of
the benchmark's engine running sshd and its own dockerd, reached at its address on a network
made for it (only the benchmark's own containers are ever contacted). The images the
benchmark built are given to it first, as a registry would (the rows time attaching and
spawning, not builds); the parent is then made there by `claudy --engine ssh://…`, and, as
in the main benchmark, nothing is measured until its shared services are up (their image
loads into that parent in the background on its first run).

- 12: warm attach over ssh, `claudy --engine ssh://… DIR` in a terminal → a tmux client
  attached in the remote parent, against `docker -H ssh://… exec PARENT true` (the same ssh
  set-up: one key, known_hosts, a shared master connection for both).
- 13: a worker's spawn in the remote parent (measured inside it, as row 1), against a bare
  nested `docker run --rm` in that parent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path

import docker

from benchmarks.attach import ParentTmux, warm_attaches
from benchmarks.core import MissingMeasurement, Report, poll, row
from hal_common.config import Config
from hal_common.naming import session_name
from hal_common.shared_services import SERVICES_IMAGE
from hal_testing.host import HostParent
from hal_testing.remote_host import BASE, RemoteHost, remote_host

INSIDE = Path(__file__).with_name("inside.py")


def measure(client: docker.DockerClient, reps: int, report: Report, uid: int, gid: int) -> None:
    """Rows 12 and 13 into `report`; the remote host and its parent are gone afterwards."""
    cfg = Config()
    images = (BASE, cfg.parent.image, cfg.worker.image, SERVICES_IMAGE)
    ssh_dir = Path(tempfile.mkdtemp(prefix="halb-ssh-"))
    base = Path(tempfile.mkdtemp(prefix="halb-rm-"))
    try:
        with remote_host(client, ssh_dir, seed=images) as rh:
            rp = HostParent.create(
                rh.engine(),
                rh.url,
                base / "u",
                f"hal9000-bench-rm-{uuid.uuid4().hex[:4]}",
                worker='memory = "1g"\ncpus = 1.0\n',
                uid=uid,
                gid=gid,
                env={"PATH": rh.env["PATH"]},
            )
            # the project is a copy at the same path there (rh.mirror), which claudy's probe
            # would not take for a shared file system: the bind mount, said outright
            rp.set_projects("mount")
            rh.mirror(base / "u" / "config")
            try:
                proj = rp.project("warm")
                rh.mirror(rp.root, uid, gid)
                res = rp.claudy("--engine", rh.url, "-d", str(proj), timeout=1800)
                if res.returncode != 0:
                    raise MissingMeasurement(f"claudy --engine failed: {res.stderr[-2000:]}")
                poll(lambda: _services_up(rp), 900, interval=1.0)  # each ask: an exec over ssh
                _warm_attach(rh.url, rh.container.attrs["State"]["Pid"], rp, proj, reps, report)
                _spawn(rp, rh, reps, report, cfg.worker.image, uid, gid)
            finally:
                rp.claudy("--engine", rh.url, "down", "--volumes", "--yes", timeout=300)
    finally:
        shutil.rmtree(ssh_dir, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def _services_up(rp: HostParent) -> bool:
    found = rp.services()
    return found is not None and all(s["ok"] for s in found)


def _warm_attach(
    url: str, host_pid: int, rp: HostParent, proj: Path, reps: int, report: Report
) -> None:
    window = session_name(str(proj))
    rp.parent.reload()  # its tmux server through the remote host's /proc
    parent_pid = rp.parent.attrs["State"]["Pid"]
    tmux = ParentTmux(
        ["tmux", "-S", f"/proc/{host_pid}/root/proc/{parent_pid}/root/run/hal9000/tmux.sock"], rp
    )
    times, floor, _ = warm_attaches(
        tmux,
        rp.claudy_words("--engine", url, str(proj)),
        ["docker", "-H", url, "exec", rp.name, "true"],
        rp.env,
        reps,
        lambda: window in rp.windows(),
        120,
    )
    report.add(
        row(
            "12",
            "warm attach over ssh: claudy --engine ssh://… → tmux client attached",
            "s",
            times,
            floor_name="docker -H ssh://… exec parent true",
            floor=floor,
            target="≤ 3×",
            limit=3.0,
            note="the quick entry: one `docker -H … inspect` (the parent, its image, the "
            "worker image), then `docker -H … exec -it` of the in-parent attach script",
        )
    )


def _spawn(
    rp: HostParent, rh: RemoteHost, reps: int, report: Report, image: str, uid: int, gid: int
) -> None:
    names = [str(rp.project(f"one-{i}")) for i in range(reps)]
    rh.mirror(rp.root, uid, gid)  # the projects at the same paths there

    def inside(*args: str) -> object:
        code, out = rp.run(["/opt/hal/bin/python", "-c", INSIDE.read_text(), *args])
        if code != 0:
            raise MissingMeasurement(f"inside {args[0]} failed: {out[-2000:]}")
        return json.loads(out.strip().splitlines()[-1])

    spawned = inside("spawn", json.dumps(names))  # each from a settled machine, as row 1
    floor = inside("bare", image, str(reps))
    if not (isinstance(spawned, dict) and isinstance(floor, list)):
        raise MissingMeasurement("13: inside.py's answers are not what it prints")
    single = [float(t) for t in spawned["times"]]
    report.add(
        row(
            "13",
            "worker spawn on the remote engine → agent pid inside",
            "s",
            single,
            floor_name="bare nested docker run --rm there, internal network",
            floor=floor,
            target="≤ 1.5×",
            limit=1.5,
        )
    )


def main() -> int:
    """Rows 12 and 13 alone: `DOCKER_HOST=… python -m benchmarks.remote [--reps N]` (root)."""
    import argparse
    import os
    import sys

    from benchmarks.core import table
    from hal_testing import engine

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    client = engine.connect(os.environ["DOCKER_HOST"])
    engine.build_images(client)
    report = Report(machine=f"{os.cpu_count()} cpus")
    measure(client, args.reps, report, 4321, 4321)
    rows = report.complete(("12", "13"))
    print(table(rows))
    for r in rows:
        if r.note:
            print(f"  {r.key}: {r.note}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
