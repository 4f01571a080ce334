"""A worker's security posture, as `hal-agent doctor` shows it: what the engine says it was
created with (inspect data) and what its init process actually has (`/proc/1/status`).

Pure: both are arguments. A worker created before hardening (an older hal-9000, or by hand)
shows its problems here until it is recreated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hal_common.egress import WORKER_NETWORK
from parent_agent.core.spec import DEDICATED_UID

# The engines' sockets a worker must not reach: the parent's inner engine and the usual ones.
ENGINE_SOCKETS = ("/run/hal9000/docker.sock", "/var/run/docker.sock", "/run/docker.sock")


def exposes_socket(source: str, destination: str, sockets: tuple[str, ...]) -> bool:
    """A mount that is a socket, or a directory holding one of `sockets`."""
    if source.endswith(".sock") or destination.endswith(".sock"):
        return True
    top = source.rstrip("/") + "/"
    return any(s == source or s.startswith(top) for s in sockets)


@dataclass(frozen=True)
class Posture:
    """What doctor prints for one worker: `facts` in order, `problems` (none: hardened)."""

    name: str
    state: str
    facts: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())
    uid: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def dedicated(self) -> bool:
        return self.uid == DEDICATED_UID


def engine_seccomp(info: Mapping[str, Any]) -> bool:
    """The engine (its `info`) applies a seccomp profile to containers by default."""
    opts = [str(o) for o in info.get("SecurityOptions") or []]
    return any("name=seccomp" in o and "profile=unconfined" not in o for o in opts)


def proc_status(text: str) -> dict[str, str]:
    """`/proc/PID/status` as a mapping of its fields (values stripped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _uid(user: str) -> int | None:
    head = user.split(":", 1)[0]
    if head.isdigit():
        return int(head)
    return 0 if head in ("", "root") else None  # the image's default user is root


def _size(n: int) -> str:
    for unit, shift in (("g", 30), ("m", 20), ("k", 10)):
        if n >= 1 << shift and n % (1 << (shift - 4)) == 0:
            return f"{n / (1 << shift):g}{unit}"
    return str(n)


def posture(
    attrs: Mapping[str, Any], status: str | None, sockets: tuple[str, ...] = ENGINE_SOCKETS
) -> Posture:
    """The posture of a worker from its inspect data and, when it runs, its init process's
    `/proc/1/status` text (None: not running, or it could not be read). `sockets`: the
    engine sockets no mount may expose."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    name = str(attrs.get("Name") or "").lstrip("/")
    state = str((attrs.get("State") or {}).get("Status", ""))
    facts: list[str] = []
    problems: list[str] = []

    user = str(config.get("User") or "")
    uid = _uid(user)
    facts.append(f"user {user or 'root (image default)'}")
    if uid == 0:
        problems.append("runs as root")
    if host.get("Privileged"):
        problems.append("privileged")
    if "ALL" not in [c.upper() for c in host.get("CapDrop") or []]:
        problems.append("capabilities not dropped")
    if host.get("CapAdd"):
        problems.append(f"capabilities added: {','.join(host['CapAdd'])}")
    opts = [str(o) for o in host.get("SecurityOpt") or []]
    if not any(o.startswith("no-new-privileges") and not o.endswith("false") for o in opts):
        problems.append("no-new-privileges not set")
    if any(o.replace(":", "=") == "seccomp=unconfined" for o in opts):
        problems.append("seccomp unconfined")
    if host.get("Devices"):
        problems.append("devices added")
    if host.get("ReadonlyRootfs"):
        facts.append("read-only root")
    else:
        problems.append("writable root file system")
    exposed = [
        str(m.get("Source") or "")
        for m in attrs.get("Mounts") or []
        if exposes_socket(str(m.get("Source") or ""), str(m.get("Destination") or ""), sockets)
    ]
    if exposed:
        problems.append(f"engine socket mounted: {', '.join(exposed)}")
    memory, nano, pids = host.get("Memory") or 0, host.get("NanoCpus") or 0, host.get("PidsLimit")
    facts.append(
        f"mem {_size(memory) if memory else 'unlimited'}, "
        f"cpus {nano / 1e9:g}" + ("" if nano else " (unlimited)") + f", pids {pids or 'unlimited'}"
    )
    if not memory:
        problems.append("no memory limit")
    if not nano:
        problems.append("no CPU limit")
    if not pids or pids < 0:
        problems.append("no pids limit")
    net = str(host.get("NetworkMode") or "?")
    facts.append(f"network {net}")
    if net != WORKER_NETWORK:
        problems.append(f"not on {WORKER_NETWORK} (its way out bypasses the egress proxy)")

    if status is not None:
        st = proc_status(status)
        uids = st.get("Uid", "").split()
        cap_eff = st.get("CapEff", "?")
        nnp = st.get("NoNewPrivs", "?")
        seccomp = st.get("Seccomp", "?")
        facts[0:0] = [f"uid {uids[0] if uids else '?'}"]
        facts[1:1] = [f"CapEff {int(cap_eff, 16) if _hex(cap_eff) else cap_eff}"]
        facts[2:2] = [f"NoNewPrivs {nnp}", f"Seccomp {seccomp}"]
        if not uids or "0" in uids:
            problems.append("a process runs with uid 0")
        for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
            if not _hex(st.get(key, "")) or int(st[key], 16) != 0:
                problems.append(f"{key} {st.get(key, '?')}")
        if nnp != "1":
            problems.append(f"NoNewPrivs {nnp}")
        if seccomp != "2":
            problems.append(f"Seccomp {seccomp} (not filtered)")
    elif state == "running":
        problems.append("its /proc/1/status could not be read")
    return Posture(name, state, tuple(facts), tuple(problems), uid)


def _hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True
