"""The background build's record, as claudy writes it and both sides read it."""

from __future__ import annotations

import json

from hal_common.services_build import (
    BUILDING,
    DONE,
    FAILED,
    RECORD_LIMIT,
    BuildRecord,
    host_line,
    waiting_detail,
)

IMAGE = "hal9000/services:latest"


def test_a_record_reads_back_as_written() -> None:
    rec = BuildRecord(FAILED, IMAGE, "/h/.local/state/hal9000/services-build.log", 7, 1.5, 2.5, "x")
    assert BuildRecord.loads(rec.dumps()) == rec


def test_what_is_not_a_record_is_none() -> None:
    assert BuildRecord.loads("") is None
    assert BuildRecord.loads("[1, 2]") is None
    assert BuildRecord.loads(json.dumps({"state": "building"})) is None  # no image, no log
    assert BuildRecord.loads(json.dumps({"state": "odd", "image": IMAGE, "log": "l"})) is None
    big = json.dumps({"state": BUILDING, "image": IMAGE, "log": "l", "error": "e" * RECORD_LIMIT})
    assert BuildRecord.loads(big) is None


def test_a_long_error_is_cut() -> None:
    text = json.dumps({"state": FAILED, "image": IMAGE, "log": "l", "error": "e" * 5000})
    rec = BuildRecord.loads(text)
    assert rec is not None and len(rec.error) == 2000


def test_the_parent_says_waiting_while_it_builds_and_why_when_it_failed() -> None:
    building = BuildRecord(BUILDING, IMAGE, "/log", 1, 0.0)
    state, detail = waiting_detail(building, IMAGE)
    assert state == "waiting" and "building on the host" in detail
    failed = BuildRecord(FAILED, IMAGE, "/log", 0, 0.0, 1.0, "pip timed out\nmore")
    state, detail = waiting_detail(failed, IMAGE)
    assert state == "no image" and "pip timed out" in detail and "/log" in detail
    assert "more" not in detail
    # no record, or one about another image: waiting for claudy to load it
    assert waiting_detail(None, IMAGE)[0] == "waiting"
    assert waiting_detail(building, "other:1") == (
        "waiting",
        "waiting for image other:1 (claudy on the host loads it)",
    )


def test_claudy_says_building_failed_or_interrupted_and_nothing_once_done() -> None:
    assert host_line(None, False) is None
    rec = BuildRecord(BUILDING, IMAGE, "/log", 1, 0.0)
    assert "is building in the background" in (host_line(rec, True) or "")
    assert "was interrupted" in (host_line(rec, False) or "")
    failed = BuildRecord(FAILED, IMAGE, "/log", 0, 0.0, 1.0, "boom")
    assert "failed: boom (log: /log)" in (host_line(failed, False) or "")
    assert host_line(BuildRecord(DONE, IMAGE, "/log"), False) is None


def test_just_loaded_is_starting_until_the_build_ends() -> None:
    from hal_common.services_build import loaded_detail

    assert loaded_detail(BuildRecord(BUILDING, IMAGE, "/log", 1, 0.0), IMAGE) == (
        "starting",
        f"image {IMAGE} loaded, the container is being created",
    )
    assert loaded_detail(BuildRecord(DONE, IMAGE, "/log"), IMAGE) is None
    assert loaded_detail(None, IMAGE) is None
