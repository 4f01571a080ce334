"""The parent reads the host's record of the services image's background build from the
config directory (`/config/hal9000/services-build.json`): no link is followed, no FIFO or
device holds the loop, nothing oversized is read whole, and no control character reaches
the dashboard's terminal."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from hal_common.services_build import FAILED, RECORD_LIMIT, BuildRecord, waiting_detail
from parent_agent.adapters.services import read_build_record

IMAGE = "hal9000/services:latest"


def record(**kw: object) -> str:
    return json.dumps({"state": FAILED, "image": IMAGE, "log": "/l", **kw})


def test_a_link_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.json"
    real.write_text(record())
    link = tmp_path / "services-build.json"
    link.symlink_to(real)
    assert read_build_record(link) is None
    assert read_build_record(real) is not None


def test_a_fifo_does_not_hold_the_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "services-build.json"
    os.mkfifo(fifo)
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(read_build_record(fifo)), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive() and out == [None]


def test_an_oversized_record_is_no_record(tmp_path: Path) -> None:
    big = tmp_path / "services-build.json"
    big.write_text(record(error="e" * (RECORD_LIMIT * 4)))
    assert read_build_record(big) is None


def test_no_escape_sequence_reaches_the_dashboard(tmp_path: Path) -> None:
    path = tmp_path / "services-build.json"
    path.write_text(record(error="\x1b]0;owned\x07\x1b[2Jpip failed\x1b[0m", log="/l\x1b[31m"))
    rec = read_build_record(path)
    assert isinstance(rec, BuildRecord)
    state, detail = waiting_detail(rec, IMAGE)
    assert state == "no image" and "pip failed" in detail
    assert not any(not c.isprintable() for c in detail), repr(detail)
