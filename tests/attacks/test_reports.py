"""Attacks on the agent-state reports, from inside real workers (the real worker image, a
real engine, the parent's own reader). Each must fail for the attacker:

- report for another worker: write into its report directory, link to it from its own,
  claim another worker's Claude session id;
- change what it resumes: write the resume file (or anything in /etc/hal/run);
- stall or crash the parent's reader: flood its own report directory with thousands of
  files, links, FIFOs, directories, huge and malformed files, or a storm of renames (each
  one news to the reader's inotify). The reader's work per scan is bounded, it reads no
  more often than it polled, and another worker's report still arrives at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.config import WorkerConfig
from hal_common.layout import ParentLayout
from hal_testing.engine import GID, UID, Projects
from parent_agent.adapters import untrusted, workers
from parent_agent.adapters.agent_reports import AgentReport, ReportWatcher
from parent_agent.adapters.engine import InnerEngine
from parent_agent.app.sessions import prepare_claude_home
from parent_agent.core.spec import worker_spec

pytestmark = pytest.mark.docker

SID_A = "0b9c2d36-5a8e-4c3f-9a61-2f0e8d7c6b5a"
SID_B = "7d1e0c2b-3f4a-4b5c-8d6e-9f0a1b2c3d4e"


@pytest.fixture
def pair(
    dclient: docker.DockerClient,
    built_images: dict[str, str],
    parent_layout: ParentLayout,
    projects: Projects,
) -> tuple[Container, Container]:
    engine = InnerEngine(dclient)
    out = []
    for name in ("a", "b"):
        project = projects.make(name)
        cfg = WorkerConfig(command=("sleep", "1000"), memory="512m", cpus=1.0, pids=512)
        spec = worker_spec(str(project), cfg, UID, GID, {}, layout=parent_layout)
        prepare_claude_home(parent_layout, spec.session, UID, GID, str(project))
        workers.write_resume(parent_layout, spec.session, SID_A if name == "a" else None)
        attrs = workers.ensure_worker(engine, spec, parent_layout)
        out.append(dclient.containers.get(attrs["Id"]))
    return out[0], out[1]


def sh(c: Container, script: str) -> str:
    out = c.exec_run(["sh", "-c", script + "\ntrue"]).output
    assert isinstance(out, bytes)
    return out.decode(errors="replace")


def session(c: Container) -> str:
    return str(c.labels[labels.SESSION])


def report(c: Container, sid: str, event: str = "Stop") -> str:
    return sh(
        c, f'printf \'{{"hook_event_name":"{event}","session_id":"{sid}"}}\' | hal-worker hook'
    )


def test_a_worker_cannot_report_for_another(
    pair: tuple[Container, Container], parent_layout: ParentLayout
) -> None:
    a, b = pair
    rb = parent_layout.worker_reports(session(b))
    out = sh(
        a,
        " ; ".join(
            [
                # the other's directory is nowhere in A's view
                f"ls -d {rb} {parent_layout.data_dir} 2>&1",
                "ls /run 2>&1",
                "find / -xdev -name report -path '*workers*' 2>/dev/null",
                # a link from its own directory to where B's reports are on the parent
                f"ln -s {rb}/1-1.json /run/hal-report/1-1.json",
                f"ln -s {rb} /run/hal-report/2-1.json",
                f"ln -s {rb.parent} /run/hal-report/3-1.json",
                # the mount point itself cannot be swapped for a link
                "rmdir /run/hal-report 2>&1; mv /run/hal-report /run/x 2>&1",
                "ln -sfn /tmp /run/hal-report 2>&1",  # (a link inside it, no more)
                "test -d /run/hal-report && ! test -L /run/hal-report || echo SWAPPED",
            ]
        ),
    )
    assert "SWAPPED" not in out and "No such file or directory" in out, out
    assert "hal-report" in out  # its own is there
    # B's Claude session id claimed from A: the report is A's all the same
    report(a, SID_B, "PermissionRequest")
    (rb / "100-1.json").write_text('{"hook_event_name": "Stop"}')  # B's own report
    got = {r.session: r.events for r in ReportWatcher(parent_layout, lambda r: None).scan()}
    assert [e.event for e in got[session(a)]] == ["PermissionRequest"]
    assert [e.event for e in got[session(b)]] == ["Stop"]  # B's only: nothing A planted
    assert os.listdir(parent_layout.worker_reports(session(a))) == []  # links removed
    assert os.listdir(rb) == []


def test_a_worker_cannot_change_what_it_or_another_resumes(
    pair: tuple[Container, Container], parent_layout: ParentLayout
) -> None:
    a, b = pair
    out = sh(
        a,
        " ; ".join(
            [
                "cat /etc/hal/run/resume",
                f"echo {SID_B} > /etc/hal/run/resume 2>&1 && echo WROTE",
                "rm -f /etc/hal/run/resume 2>&1 && echo REMOVED",
                "touch /etc/hal/run/x 2>&1 && echo TOUCHED",
                "mount -o remount,rw /etc/hal/run 2>&1 && echo REMOUNTED",
            ]
        ),
    )
    assert SID_A in out
    assert not any(w in out for w in ("WROTE", "REMOVED", "TOUCHED", "REMOUNTED")), out
    assert "Read-only file system" in out, out
    ra = parent_layout.worker_run(session(a)) / "resume"
    assert ra.read_text() == SID_A + "\n" and ra.stat().st_uid == os.getuid()
    assert (parent_layout.worker_run(session(b)) / "resume").read_text() == ""


def test_a_flood_of_junk_neither_stalls_the_reader_nor_hides_another_workers_report(
    pair: tuple[Container, Container], parent_layout: ParentLayout
) -> None:
    a, b = pair
    flood = " ; ".join(
        [
            "cd /run/hal-report",
            "i=0; while [ $i -lt 3000 ]; do : > $i-$i.json; i=$((i+1)); done",
            "i=0; while [ $i -lt 200 ]; do ln -s /etc/passwd 9$i-1.json; mkfifo 8$i-1.json;"
            " mkdir 7$i-1.json; i=$((i+1)); done",
            "head -c 10000000 /dev/zero > 1-9.json",
            "awk 'BEGIN { for (i = 0; i < 30000; i++) printf \"[\" }' > 2-9.json 2>/dev/null"
            " || printf '[[[[[[[[' > 2-9.json",
            "mkdir -p deep/a/b/c && : > deep/a/b/c/x",
            "chmod 000 /run/hal-report",
        ]
    )
    sh(a, flood)
    report(b, SID_B, "UserPromptSubmit")
    w = ReportWatcher(parent_layout, lambda r: None)
    t0 = time.monotonic()
    got = {r.session: r.events for r in w.scan()}
    assert time.monotonic() - t0 < 2.0
    assert [e.event for e in got[session(b)]] == ["UserPromptSubmit"]
    # A's flood drains scan by scan, each bounded; what is left is its own clutter
    ra = parent_layout.worker_reports(session(a))
    for _ in range(50):
        t0 = time.monotonic()
        w.scan()
        assert time.monotonic() - t0 < 2.0
    left = os.listdir(ra)
    assert left == ["deep"], left[:10]
    # the next start mends the directory's mode; a report from A arrives again
    os.chmod(ra, 0o000)
    workers.ensure_report_dir(parent_layout, session(a), UID, GID)
    report(a, SID_A)
    got = {r.session: r.events for r in w.scan()}
    assert [e.event for e in got[session(a)]] == ["Stop"]
    assert Path(ra).stat().st_mode & 0o777 == 0o700


def test_a_storm_of_renames_wakes_the_watcher_no_more_than_polling_did(
    pair: tuple[Container, Container],
    parent_layout: ParentLayout,
    dclient: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watcher wakes on inotify's news (issue 13): worker A renames files into its report
    directory as fast as it can for three seconds. The running watcher reads A's directory at
    most once per `interval` all the same (as polling did), the kernel's queue overflowing
    costs one read of every directory, and B's report arrives at once meanwhile."""
    a, b = pair
    opened: list[str] = []
    real = untrusted.directory

    def counting(root: Path, rel: PurePosixPath) -> Any:  # our own seam: which dirs are read
        opened.append(str(rel).split("/")[0])
        return real(root, rel)

    monkeypatch.setattr(untrusted, "directory", counting)
    got: list[AgentReport] = []
    w = ReportWatcher(parent_layout, got.append, interval=0.2)
    w.start()
    try:
        # both watched, and read once
        assert retry_until(lambda: {session(a), session(b)} <= set(opened), 5, raises=False)
        opened.clear()
        began = time.monotonic()
        api = dclient.api
        storm = api.exec_create(
            a.id,
            ["sh", "-c", "cd /run/hal-report; end=$(($(date +%s) + 3)); i=0;"
             " while [ $(date +%s) -lt $end ];"
             " do printf '{\"hook_event_name\":\"Stop\"}' > .$i-1.tmp; mv .$i-1.tmp $i-1.json;"
             " i=$((i+1)); done; echo $i"],
        )["Id"]  # fmt: skip
        api.exec_start(storm, detach=True)
        assert retry_until(lambda: session(a) in opened, 5, raises=False)  # under way
        t0 = time.monotonic()
        report(b, SID_B, "UserPromptSubmit")
        retry_until(lambda: any(r.session == session(b) for r in got), 2, raises=False)
        assert any(r.session == session(b) for r in got)
        assert time.monotonic() - t0 < 1.0
        assert retry_until(lambda: not api.exec_inspect(storm)["Running"], 10, raises=False)
        reads = opened.count(session(a))
        span = time.monotonic() - began
        assert reads <= span / 0.2 + 2, (reads, span)  # once per interval at most
    finally:
        w.stop()
    assert any(r.session == session(a) for r in got)  # A's own reports were read meanwhile
