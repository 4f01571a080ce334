"""A pod of deploy/kubernetes/ run as a plain container, for the end-to-end test: what the
kubelet would make of the StatefulSet's pod template, translated into docker-py's
`containers.run` arguments (pure).

What a node gives a pod is a directory per volume: each claim (and its `subPath`) becomes a
directory under `base`, the ConfigMap a directory laid out as the kubelet lays it out (the
files behind a `..data` symlink), an in-memory `emptyDir` a tmpfs of its size, a `hostPath`
that path. The security context becomes capabilities and unconfined profiles, and nothing
else: Docker's `--device-cgroup-rule` that `claudy` adds in `caps` mode has no Kubernetes
field, so the pod runs without it, as it would on a node.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}


def _bytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|)", quantity)
    if m is None:
        raise ValueError(f"not a memory quantity this translation knows: {quantity!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _cpus(quantity: str) -> int:
    """Nano CPUs of "4" or "500m"."""
    if quantity.endswith("m"):
        return int(quantity[:-1]) * 10**6
    return int(float(quantity) * 10**9)


def write_configmap(directory: Path, data: dict[str, str], stamp: str = "..2026_01_01") -> None:
    """`data`'s files as the kubelet writes a ConfigMap volume: in `stamp`, behind `..data`."""
    (directory / stamp).mkdir(parents=True)
    for name, text in data.items():
        (directory / stamp / name).write_text(text)
        (directory / name).symlink_to(f"..data/{name}")
    (directory / "..data").symlink_to(stamp)


def pod_run_kwargs(
    statefulset: Doc, configmaps: dict[str, Doc], base: Path, name: str
) -> dict[str, Any]:
    """docker-py `containers.run` arguments for the StatefulSet's one container, its volumes
    as directories under `base` (made here), named `name` with that hostname."""
    spec = statefulset["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    claims = {t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    binds: dict[str, dict[str, str]] = {}
    tmpfs: dict[str, str] = {}
    for mount in container["volumeMounts"]:
        target, vol = mount["mountPath"], mount["name"]
        mode = "ro" if mount.get("readOnly") else "rw"
        if vol in claims:
            source = base / "claims" / vol / mount.get("subPath", "")
            source.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volumes[vol]:
            source = base / "configmaps" / vol
            cm = configmaps[volumes[vol]["configMap"]["name"]]
            write_configmap(source, cm["data"])
        elif "emptyDir" in volumes[vol]:
            empty = volumes[vol]["emptyDir"]
            if empty.get("medium") != "Memory":
                raise ValueError(f"{vol}: only in-memory emptyDir volumes are translated")
            size = _bytes(empty["sizeLimit"])
            tmpfs[target] = f"rw,nosuid,nodev,size={size // 2**20}m"
            continue
        elif "hostPath" in volumes[vol]:
            source = Path(volumes[vol]["hostPath"]["path"])
        else:
            raise ValueError(f"{vol}: a volume kind this translation does not know")
        binds[os.fspath(source)] = {"bind": target, "mode": mode}
    sc = container.get("securityContext", {})
    if pod.get("runtimeClassName"):
        raise ValueError("a runtime class: run it where that runtime is installed")
    security_opt = []
    if sc.get("seccompProfile", {}).get("type") == "Unconfined":
        security_opt.append("seccomp=unconfined")
    if sc.get("appArmorProfile", {}).get("type") == "Unconfined":
        security_opt.append("apparmor=unconfined")
    limits = container.get("resources", {}).get("limits", {})
    kwargs: dict[str, Any] = {
        "image": container["image"],
        "name": name,
        "hostname": name,  # a StatefulSet's pod is named and hostnamed NAME-0
        "environment": {e["name"]: e["value"] for e in container.get("env", [])},
        "volumes": binds,
        "tmpfs": tmpfs,
        "cap_add": list(sc.get("capabilities", {}).get("add", [])),
        "security_opt": security_opt,
        "privileged": bool(sc.get("privileged", False)),
        "detach": True,
    }
    if "memory" in limits:
        kwargs["mem_limit"] = _bytes(limits["memory"])
    if "cpu" in limits:  # Kubernetes takes a limit above the node's cores (it never binds);
        # Docker refuses one
        kwargs["nano_cpus"] = min(_cpus(limits["cpu"]), (os.cpu_count() or 1) * 10**9)
    return kwargs
