"""The fast path's probe of a running parent, and when it may attach."""

from __future__ import annotations


def test_probe_parsing_and_when_the_fast_path_may_attach() -> None:
    from host_shim.core.fastpath import attachable, parse_probe

    found = parse_probe(0, "sha256:abc\ntrue\nproj-1\nother-2\n")
    assert found.ready and found.inner_image == "sha256:abc" and found.worker_running
    assert found.windows == {"proj-1", "other-2"}
    assert attachable(found, "sha256:abc", "proj-1", need_window=True)
    assert not attachable(found, "sha256:new", "proj-1", need_window=True)  # image to load
    assert not attachable(found, "sha256:abc", "proj-9", need_window=True)  # no window yet
    assert attachable(found, "sha256:abc", "proj-9", need_window=False) is True
    assert parse_probe(3, "") == parse_probe(0, "") and not parse_probe(3, "").ready
    stopped = parse_probe(0, "none\nabsent\n")
    assert stopped.inner_image == "" and not stopped.worker_running
