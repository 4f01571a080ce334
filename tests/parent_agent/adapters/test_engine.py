"""The parent's engine façade: plain data back, docker-py's errors as HalErrors (real engine),
and the pure parsing behind it (no engine)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import docker
import pytest

from hal_common import labels
from hal_common.config import WorkerConfig
from hal_common.errors import HalError, ImageMissing, NameConflict, NoSuchSession
from parent_agent.adapters.engine import InnerEngine
from parent_agent.core.model import ContainerEvent, to_event, to_listed, to_worker
from parent_agent.core.spec import limits_body

BASE = "hal9000/base:bookworm"  # the debootstrapped base the image build makes first


def test_worker_listed_and_event_from_engine_data() -> None:
    attrs = {
        "Name": "/hal9000-w-a",
        "Created": "2026-01-02T03:04:05.123456789Z",
        "Config": {"Labels": {labels.SESSION: "a", labels.PROJECT: "/p/a", labels.IMAGE: "i"}},
        "State": {
            "Status": "running",
            "StartedAt": "2026-01-02T03:04:06Z",
            "Pid": 42,
            "FinishedAt": "0001-01-01T00:00:00Z",
        },
        "HostConfig": {"Memory": 512 << 20, "NanoCpus": 2 * 10**9, "PidsLimit": 0},
    }
    w = to_worker(attrs)
    assert (w.name, w.container, w.project, w.state, w.pid) == (
        "a",
        "hal9000-w-a",
        "/p/a",
        "running",
        42,
    )
    assert w.created is not None and w.created.microsecond == 123456 and w.finished_at is None
    assert (w.memory, w.nano_cpus, w.pids) == (512 << 20, 2 * 10**9, 0)
    summary = {
        "Id": "abc",
        "Names": ["/hal9000-w-a"],
        "State": "exited",
        "Status": "Exited (0) 1 second ago",
        "Labels": {labels.SESSION: "a"},
    }
    listed = to_listed(summary)
    assert (listed.id, listed.name, listed.state, listed.session) == (
        "abc",
        "hal9000-w-a",
        "exited",
        "a",
    )
    raw = {"Action": "die", "Actor": {"Attributes": {labels.SESSION: "a", "exitCode": "137"}}}
    assert to_event(raw) == ContainerEvent("die", "a", labels.ROLE_WORKER, 137)


def test_limits_body_keeps_swap_at_the_limit_and_never_lifts_a_limit() -> None:
    assert limits_body(WorkerConfig(memory="1g", cpus=1.5, pids=100)) == {
        "Memory": 1 << 30,
        "MemorySwap": 1 << 30,
        "NanoCpus": 1_500_000_000,
        "PidsLimit": 100,
    }
    # unset limits (only a WorkerConfig made in code can have them) are the defaults
    unset = limits_body(WorkerConfig(memory="0", cpus=0.0, pids=0))
    assert unset == {
        "Memory": 4 << 30,
        "MemorySwap": 4 << 30,
        "NanoCpus": 2_000_000_000,
        "PidsLimit": 1024,
    }


@pytest.fixture
def engine(dclient: docker.DockerClient, built_images: dict[str, str]) -> InnerEngine:
    return InnerEngine(dclient)


@pytest.fixture
def name(labelled: dict[str, str]) -> Iterator[str]:
    yield f"hal-engine-test-{uuid.uuid4().hex[:8]}"  # removed by `labelled`


@pytest.mark.docker
def test_containers_by_label_as_plain_data(
    engine: InnerEngine, labelled: dict[str, str], name: str
) -> None:
    mark = {**labelled, labels.ROLE: "test-engine", labels.SESSION: name}
    made = engine.run(image=BASE, name=name, command=["sleep", "60"], labels=mark)
    assert made["State"]["Status"] == "running" and made["Name"] == f"/{name}"
    (listed,) = engine.containers("test-engine", session=name)
    assert (listed.id, listed.name, listed.state) == (made["Id"], name, "running")
    assert [a["Id"] for a in engine.inspect_all("test-engine", session=name)] == [made["Id"]]
    res = engine.exec(name, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert res.exit_code == 3 and "out" in res.output and "err" in res.output
    assert any("sleep" in " ".join(p) for p in engine.top(name)["Processes"])
    assert "cpu_stats" in engine.stats(name)
    engine.update_limits(name, limits_body(WorkerConfig(memory="256m", cpus=0.5, pids=64)))
    host = (engine.inspect(name) or {})["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (256 << 20, 5 * 10**8, 64)
    engine.stop(name, timeout=1)
    assert engine.containers("test-engine", session=name, stopped=False) == []
    engine.remove(name)
    assert engine.inspect(name) is None and engine.containers("test-engine", session=name) == []


@pytest.mark.docker
def test_errors_are_hal_errors_a_caller_can_tell_apart(
    engine: InnerEngine, labelled: dict[str, str], name: str
) -> None:
    with pytest.raises(ImageMissing, match="no image none/such:1"):
        engine.create(image="none/such:1", name=name, labels=labelled)
    engine.create(image=BASE, name=name, command=["true"], labels=labelled)
    with pytest.raises(NameConflict):
        engine.create(image=BASE, name=name, command=["true"], labels=labelled)
    for call in (
        lambda: engine.start("no-such-container-x"),
        lambda: engine.update_limits("no-such-container-x", {"PidsLimit": 5}),
        lambda: engine.logs("no-such-container-x"),
    ):
        with pytest.raises(NoSuchSession, match="no-such-container-x"):
            call()
    with pytest.raises(HalError, match=r"^starting it: "):
        engine.exec(name, ["true"], what="starting it")  # not running: the engine says 409
    assert engine.image_id("none/such:1") is None and engine.image_labels("none/such:1") is None
    assert engine.image_id(BASE) is not None and engine.has_image(BASE)


@pytest.mark.docker
def test_events_of_our_containers_as_values(
    engine: InnerEngine, labelled: dict[str, str], name: str
) -> None:
    seen: list[ContainerEvent] = []
    died = threading.Event()

    def watch() -> None:
        for ev in engine.events(["start", "die"]):
            if ev.session == name:
                seen.append(ev)
                if ev.action == "die":
                    died.set()
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    mark = {**labelled, labels.SESSION: name}
    # the stream may open after this start: a start that misses it still dies later
    engine.run(image=BASE, name=name, command=["sh", "-c", "sleep 1; exit 7"], labels=mark)
    assert died.wait(30), seen
    assert seen[-1] == ContainerEvent("die", name, labels.ROLE_WORKER, 7)
