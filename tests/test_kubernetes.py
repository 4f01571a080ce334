"""The Kubernetes manifests (deploy/kubernetes/): each is valid YAML, valid against the schemas
of the last three Kubernetes minor versions that the installed `kubernetes-validate` knows
(strict: an unknown field is an error), and consistent with the code they mirror: the
parent's security modes, mounts, environment and stop timeout (`parent_spec`, `ParentLayout`),
its image (the version), the egress allowlist's ports and special ranges (`egress`), and the
config the ConfigMap carries (the real config parser)."""

from __future__ import annotations

import copy
import importlib
import ipaddress
import os
import queue
import re
import shutil
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from hal_common import egress
from hal_common.config import Config, WatchConfig, resolve_saved
from hal_common.layout import CONFIG_NAME
from hal_testing import REPO
from host_shim.core import parent_spec

DEPLOY = REPO / "deploy" / "kubernetes"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
LAYOUT = parent_spec.PARENT_LAYOUT
Doc = dict[str, Any]


def _validator() -> ModuleType:
    """kubernetes-validate's functions; a missing package fails (it is a dev dependency),
    never skips: CI must not go green without the validation."""
    try:
        return importlib.import_module("kubernetes_validate.utils")
    except ImportError as e:
        pytest.fail(f"kubernetes-validate is not installed ({e}): pip install -e '.[dev]'")


def last_minors(versions: list[str], count: int = 3) -> list[str]:
    """The newest `count` distinct minor versions ("1.37") among `versions` ("1.37.0", …)."""
    minors = {tuple(int(p) for p in v.split(".")[:2]) for v in versions}
    return [f"{a}.{b}" for a, b in sorted(minors)[-count:]]


def kube_versions() -> list[str]:
    return last_minors(_validator().all_versions())


@cache
def docs(path: Path) -> tuple[Doc, ...]:
    loaded = tuple(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    assert loaded, f"{path.name} holds no document"
    return loaded


def one(kind: str, name: str) -> Doc:
    """The one document of `kind` in the file `name`."""
    found = [d for d in docs(DEPLOY / name) if d["kind"] == kind]
    assert len(found) == 1, f"{name}: {len(found)} {kind} documents"
    return found[0]


def pod(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def container(doc: Doc) -> Doc:
    [parent] = pod(doc)["containers"]
    c: Doc = parent
    return c


def caps_set() -> Doc:
    return one("StatefulSet", "parent-caps.yaml")


def sysbox_set() -> Doc:
    return one("StatefulSet", "parent-sysbox.yaml")


# -- the files ------------------------------------------------------------------------------


def test_the_manifests_are_there() -> None:
    names = {p.name for p in MANIFESTS}
    assert {"config.yaml", "networkpolicy.yaml", "parent-caps.yaml", "parent-sysbox.yaml"} <= names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_is_yaml_documents_of_named_objects(path: Path) -> None:
    for doc in docs(path):
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path.name
        assert doc["metadata"].get("name"), f"{path.name}: a {doc['kind']} has no name"
        assert "namespace" not in doc["metadata"], "the user picks the namespace (kubectl -n)"


def test_the_versions_are_the_newest_three_minors_the_package_knows() -> None:
    assert last_minors(["1.25.0", "1.36.0", "1.37.0", "1.37.0", "1.9.0", "1.35.1"]) == [
        "1.35",
        "1.36",
        "1.37",
    ]
    versions = kube_versions()
    assert len(versions) == 3, versions
    newest = max(_validator().all_versions(), key=lambda v: tuple(map(int, v.split("."))))
    assert versions[-1] == ".".join(newest.split(".")[:2])


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_is_valid_for_the_last_three_kubernetes_versions(path: Path) -> None:
    kv = _validator()
    for version in kube_versions():
        for doc in docs(path):
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                where = "/".join(str(p) for p in e.absolute_path)
                pytest.fail(
                    f"{path.name}: {doc['kind']} invalid for Kubernetes {version}: "
                    f"{where}: {e.message}"
                )
            except kv.SchemaNotFoundError as e:
                pytest.fail(f"{path.name}: {e.message}")


def test_the_validation_refuses_a_misspelt_field_in_each_version() -> None:
    kv = _validator()
    broken = copy.deepcopy(caps_set())
    mount = container(broken)["volumeMounts"][0]
    mount["mountpath"] = mount.pop("mountPath")
    for version in kube_versions():
        with pytest.raises(kv.ValidationError):
            kv.validate(broken, version, strict=True)


# -- the parent -----------------------------------------------------------------------------


def test_the_image_is_this_versions_parent() -> None:
    for doc in (caps_set(), sysbox_set()):
        assert container(doc)["image"] == Config().parent.image


def test_caps_mode_has_the_capabilities_and_profiles_claudy_gives_the_parent() -> None:
    kwargs = parent_spec.security_kwargs("caps")
    sc = container(caps_set())["securityContext"]
    assert sc["capabilities"]["add"] == kwargs["cap_add"] == parent_spec.CAPS
    assert "drop" not in sc["capabilities"]
    assert not sc.get("privileged"), "caps mode is not a privileged pod"
    unconfined = {o.partition("=")[0] for o in kwargs["security_opt"] if o.endswith("=unconfined")}
    assert unconfined == {"seccomp", "apparmor"}
    assert sc["seccompProfile"] == {"type": "Unconfined"}
    assert sc["appArmorProfile"] == {"type": "Unconfined"}
    assert "runtimeClassName" not in pod(caps_set())


def test_sysbox_mode_is_the_runtime_class_and_nothing_privileged() -> None:
    assert pod(sysbox_set())["runtimeClassName"] == parent_spec.security_kwargs("sysbox")["runtime"]
    assert "securityContext" not in container(sysbox_set())
    assert "securityContext" not in pod(sysbox_set())
    assert not [v for v in pod(sysbox_set())["volumes"] if "hostPath" in v]


def test_the_two_variants_differ_in_their_security_only() -> None:
    caps, sysbox = copy.deepcopy(caps_set()), copy.deepcopy(sysbox_set())
    del container(caps)["securityContext"]
    container(caps)["volumeMounts"] = [
        m for m in container(caps)["volumeMounts"] if m["name"] != "cgroup"
    ]
    pod(caps)["volumes"] = [v for v in pod(caps)["volumes"] if v["name"] != "cgroup"]
    del pod(sysbox)["runtimeClassName"]
    del sysbox["spec"]["template"]["metadata"]["annotations"]
    assert caps == sysbox


def mounts(doc: Doc) -> dict[str, Doc]:
    return {m["mountPath"]: m for m in container(doc)["volumeMounts"]}


def env(doc: Doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(doc)["env"]}


@pytest.mark.parametrize("mode", ["caps", "sysbox"])
def test_the_pod_mounts_what_the_parent_container_mounts(mode: str) -> None:
    doc = caps_set() if mode == "caps" else sysbox_set()
    user = parent_spec.HostUser(1000, 1000)
    roots = tuple(env(doc)["HAL_ROOTS"].split(":"))
    kwargs = parent_spec.parent_kwargs(Config(), roots, "/host/cfg", user, mode)
    wanted = {v["bind"] for v in kwargs["volumes"].values()} | set(kwargs["tmpfs"])
    assert set(mounts(doc)) == wanted
    assert mounts(doc)[str(LAYOUT.config_dir)].get("readOnly") is True


def test_the_volumes_are_the_layouts_and_the_engine_has_its_own_claim() -> None:
    doc = caps_set()
    claims = {t["metadata"]["name"] for t in doc["spec"]["volumeClaimTemplates"]}
    assert claims == {"docker", "state"}
    m = mounts(doc)
    assert m[str(LAYOUT.inner_data_root)]["name"] == "docker"
    assert "subPath" not in m[str(LAYOUT.inner_data_root)]
    state = {
        str(LAYOUT.claude_home): "claude",
        str(LAYOUT.data_dir): "data",
        **{root: "projects" for root in env(doc)["HAL_ROOTS"].split(":")},
    }
    for path, sub in state.items():
        assert (m[path]["name"], m[path]["subPath"]) == ("state", sub), path
    volumes = {v["name"]: v for v in pod(doc)["volumes"]}
    run = volumes[m[str(LAYOUT.run_dir)]["name"]]["emptyDir"]
    size = re.search(r"size=(\d+)m", parent_spec.RUN_TMPFS)
    assert size is not None
    assert run == {"medium": "Memory", "sizeLimit": f"{size.group(1)}Mi"}
    config = volumes[m[str(LAYOUT.config_dir)]["name"]]["configMap"]
    assert config["name"] == one("ConfigMap", "config.yaml")["metadata"]["name"]


def test_the_environment_is_variables_the_parent_reads() -> None:
    user = parent_spec.HostUser(1000, 1000)
    known = parent_spec.parent_kwargs(Config(), (), "/c", user, "caps")["environment"]
    got = env(caps_set())
    # every variable the parent container gets (no config overrides, no published ports)
    assert set(got) == set(known)
    assert got["HAL_HOST_CONFIG_DIR"] == str(LAYOUT.config_dir)
    assert int(got["HAL_HOST_UID"]) != 0, "workers run as a user, not root's dedicated uid"


def test_the_grace_period_is_the_parents_stop_timeout() -> None:
    for doc in (caps_set(), sysbox_set()):
        assert pod(doc)["terminationGracePeriodSeconds"] == parent_spec.STOP_TIMEOUT
        assert doc["spec"]["replicas"] == 1


def quantity(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "": 1}
    m = re.fullmatch(r"([\d.]+)(Ki|Mi|Gi|m|)", text)
    assert m, text
    return float(m.group(1)) * units[m.group(2)]


def test_the_requests_fit_the_limits_and_the_sizing_in_docs() -> None:
    res = container(caps_set())["resources"]
    for key in ("memory", "cpu"):
        assert quantity(res["requests"][key]) <= quantity(res["limits"][key]), key
    # docs/scale.md: the parent 171.3 MB + the services 488 MB + 8 agents of 257 MB
    assert quantity(res["requests"]["memory"]) >= (171.3 + 488 + 8 * 257) * 1e6
    scale = (REPO / "docs" / "scale.md").read_text()
    assert f"requests: {res['requests']['memory']}" in scale


# -- the network ----------------------------------------------------------------------------


def test_the_policy_selects_the_parent_pod() -> None:
    policy = one("NetworkPolicy", "networkpolicy.yaml")
    labels = caps_set()["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["ingress"] == []
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_the_policy_allows_dns_and_the_allowlists_ports_to_public_addresses() -> None:
    dns, internet = one("NetworkPolicy", "networkpolicy.yaml")["spec"]["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    ports = {egress.parse_entry(e).port for e in egress.DEFAULT_ALLOW}
    assert {("TCP", p) for p in ports} == {(p["protocol"], p["port"]) for p in internet["ports"]}
    blocks = {b["ipBlock"]["cidr"]: b["ipBlock"]["except"] for b in internet["to"]}
    assert set(blocks) == {"0.0.0.0/0", "::/0"}
    for cidr, excepted in blocks.items():
        version = ipaddress.ip_network(cidr).version
        special = {n for n in egress._SPECIAL if n.version == version}
        assert {ipaddress.ip_network(e) for e in excepted} == special, cidr


# -- the config -----------------------------------------------------------------------------


def test_the_configmap_is_a_valid_config_with_no_warning() -> None:
    data = one("ConfigMap", "config.yaml")["data"]
    assert set(data) == {CONFIG_NAME}
    cfg = resolve_saved(data[CONFIG_NAME], "deploy/kubernetes/config.yaml", {}).config
    assert cfg.warnings == ()
    assert cfg.network.mode == "allowlist"


# -- a ConfigMap's update, as the kubelet makes it ------------------------------------------


def _configmap_write(directory: Path, text: str, stamp: str) -> None:
    """What the kubelet's atomic writer does for a ConfigMap volume: the files in a new
    timestamped directory, `..data` swapped to it by a rename, each key a symlink through
    `..data` (made once)."""
    fresh = directory / f"..{stamp}"
    fresh.mkdir()
    (fresh / CONFIG_NAME).write_text(text)
    old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    (directory / "..data_tmp").symlink_to(fresh.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    if not (directory / CONFIG_NAME).is_symlink():
        (directory / CONFIG_NAME).symlink_to(f"..data/{CONFIG_NAME}")
    if old:
        shutil.rmtree(directory / old)


def test_the_parent_sees_a_configmap_update_live(tmp_path: Path) -> None:
    from parent_agent.adapters.config_watch import ConfigChanged, ConfigEvent, ConfigWatcher

    text = one("ConfigMap", "config.yaml")["data"][CONFIG_NAME]
    _configmap_write(tmp_path, text, "2026_12_03_10_00_00.1")
    events: queue.Queue[ConfigEvent] = queue.Queue()
    # the default [watch] mode (auto): the kubelet renames `..data`, never config.toml, so
    # the change is seen by the stat of the file that auto adds to the native events
    watch = WatchConfig(mode=WatchConfig().mode, poll_interval=0.1)
    watcher = ConfigWatcher(tmp_path / CONFIG_NAME, events.put, watch=watch, env={})
    initial = watcher.start()
    try:
        assert isinstance(initial, ConfigChanged)
        assert initial.config.worker.memory == "4g"
        _configmap_write(
            tmp_path, text.replace('memory = "4g"', 'memory = "2g"'), "2026_12_03_10_01_00.2"
        )
        got = events.get(timeout=10)
        assert isinstance(got, ConfigChanged), got
        assert got.config.worker.memory == "2g"
    finally:
        watcher.stop()
