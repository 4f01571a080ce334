"""A worker's posture from its inspect data and its init's /proc/1/status."""

from __future__ import annotations

from typing import Any

from hal_common.config import WorkerConfig
from hal_common.layout import ParentLayout
from parent_agent.core.posture import engine_seccomp, posture, proc_status
from parent_agent.core.spec import DEDICATED_UID, create_kwargs, worker_spec

HARDENED_STATUS = """Name:\ttini
Uid:\t1234\t1234\t1234\t1234
Gid:\t1235\t1235\t1235\t1235
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t0000000000000000
CapAmb:\t0000000000000000
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t1
"""

# what the issue found when claudy ran as root, before hardening
ROOT_STATUS = HARDENED_STATUS.replace("1234", "0").replace("1235", "0")
ROOT_STATUS = ROOT_STATUS.replace("CapEff:\t0000000000000000", "CapEff:\t00000000a80425fb")
ROOT_STATUS = ROOT_STATUS.replace("NoNewPrivs:\t1", "NoNewPrivs:\t0")


def hardened_attrs(uid: int = 1234) -> dict[str, Any]:
    """Inspect data as the engine gives it for a worker made by create_kwargs."""
    kw = create_kwargs(worker_spec("/p", WorkerConfig(), uid, 1235, {}), ParentLayout())
    return {
        "Name": "/" + kw["name"],
        "State": {"Status": "running"},
        "Config": {"User": kw["user"], "Labels": kw["labels"]},
        "HostConfig": {
            "CapDrop": kw["cap_drop"],
            "CapAdd": None,
            "SecurityOpt": kw["security_opt"],
            "Privileged": False,
            "ReadonlyRootfs": kw["read_only"],
            "Memory": kw["mem_limit"],
            "NanoCpus": kw["nano_cpus"],
            "PidsLimit": kw["pids_limit"],
            "NetworkMode": kw["network"],
            "Devices": [],
        },
        "Mounts": [{"Source": s, "Destination": v["bind"]} for s, v in kw["volumes"].items()],
    }


def test_a_hardened_worker_shows_its_posture() -> None:
    p = posture(hardened_attrs(), HARDENED_STATUS)
    assert p.ok, p.problems
    assert p.facts[:4] == ("uid 1234", "CapEff 0", "NoNewPrivs 1", "Seccomp 2")
    assert "read-only root" in p.facts and "network hal9000-workers" in p.facts
    assert "mem 4g, cpus 2, pids 1024" in p.facts
    assert not p.dedicated and posture(hardened_attrs(DEDICATED_UID), HARDENED_STATUS).dedicated


def test_an_outdated_worker_is_flagged_for_each_thing_it_lacks() -> None:
    old = {
        "Name": "/hal9000-worker-old",
        "State": {"Status": "running"},
        "Config": {"User": "0:0"},
        "HostConfig": {"SecurityOpt": None, "Memory": 0, "NanoCpus": 0, "PidsLimit": None},
        "Mounts": [{"Source": "/run/hal9000/docker.sock", "Destination": "/var/run/docker.sock"}],
    }
    p = posture(old, ROOT_STATUS)
    assert not p.ok
    for needle in (
        "runs as root",
        "capabilities not dropped",
        "no-new-privileges not set",
        "writable root file system",
        "engine socket mounted",
        "no memory limit",
        "no CPU limit",
        "no pids limit",
        "not on hal9000-workers",
        "a process runs with uid 0",
        "CapEff 00000000a80425fb",
        "NoNewPrivs 0",
    ):
        assert any(needle in problem for problem in p.problems), (needle, p.problems)


def test_what_the_process_has_counts_not_only_what_was_asked() -> None:
    unfiltered = HARDENED_STATUS.replace("Seccomp:\t2", "Seccomp:\t0")
    assert posture(hardened_attrs(), unfiltered).problems == ("Seccomp 0 (not filtered)",)
    assert "its /proc/1/status could not be read" in posture(hardened_attrs(), None).problems
    stopped = {**hardened_attrs(), "State": {"Status": "exited"}}
    assert posture(stopped, None).ok  # a stopped worker: what it was created with


def test_proc_status_fields() -> None:
    assert proc_status(HARDENED_STATUS)["Seccomp"] == "2"
    assert proc_status("junk\nUid:\t1 2 3 4\n")["Uid"] == "1 2 3 4"


def test_engine_seccomp() -> None:
    assert engine_seccomp({"SecurityOptions": ["name=seccomp,profile=default", "name=cgroupns"]})
    assert not engine_seccomp({"SecurityOptions": ["name=seccomp,profile=unconfined"]})
    assert not engine_seccomp({"SecurityOptions": None})
