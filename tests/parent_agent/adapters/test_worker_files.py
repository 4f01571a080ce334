"""The parent's files of one worker, on real files: its report directory (the worker
user's, 0700, made before any start) and its resume file (parent-owned, a session id or
nothing)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hal_common.layout import ParentLayout
from parent_agent.adapters import workers
from parent_agent.adapters.untrusted import Refused

SID = "0b9c2d36-5a8e-4c3f-9a61-2f0e8d7c6b5a"


@pytest.fixture
def layout(tmp_path: Path) -> ParentLayout:
    return ParentLayout(run_dir=tmp_path / "run", data_dir=tmp_path / "data")


def test_the_report_dir_is_the_workers_and_mended_at_each_start(layout: ParentLayout) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    workers.ensure_report_dir(layout, "s", 1234, 1235)
    d = layout.worker_reports("s")
    st = d.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 1235, 0o700)
    assert stat.S_IMODE(d.parent.stat().st_mode) == 0o700 and d.parent.stat().st_uid == 0
    os.chmod(d, 0o500)  # the worker's doing
    os.chown(d, 1234, 99)
    workers.ensure_report_dir(layout, "s", 1234, 1235)
    st = d.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 1235, 0o700)


def test_a_link_in_place_of_the_report_dir_is_refused(layout: ParentLayout, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    d = layout.worker_reports("s")
    d.parent.mkdir(parents=True)
    d.symlink_to(other)
    with pytest.raises(Refused):
        workers.ensure_report_dir(layout, "s", 1234, 1235)
    assert other.stat().st_uid == os.getuid()


def test_write_resume_writes_an_id_or_nothing(layout: ParentLayout) -> None:
    f = layout.worker_run("s") / "resume"
    workers.write_resume(layout, "s", SID)
    assert f.read_text() == SID + "\n"
    assert stat.S_IMODE(f.stat().st_mode) == 0o644 and f.stat().st_uid == os.getuid()
    workers.write_resume(layout, "s", None)
    assert f.read_text() == ""
    for bad in ("../../etc/passwd", SID + "\n--dangerously-skip-permissions", "x" * 36, ""):
        workers.write_resume(layout, "s", bad)
        assert f.read_text() == ""
