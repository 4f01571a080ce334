"""The parent container's create arguments and its security mode."""

from __future__ import annotations

from hal_common import labels
from hal_common.config import Config
from host_shim.core.parent_spec import HostUser, parent_kwargs, resolve_security, volume_names


def test_parent_kwargs_caps_mode_mounts_roots_at_the_same_path() -> None:
    kw = parent_kwargs(
        Config(), ("/home/u",), "/home/u/.config/hal9000", HostUser(1000, 1000), "caps"
    )
    assert kw["volumes"]["/home/u"] == {"bind": "/home/u", "mode": "rw"}
    assert kw["volumes"]["/home/u/.config/hal9000"]["bind"] == "/config/hal9000"
    assert kw["volumes"]["/sys/fs/cgroup"]["mode"] == "rw"
    assert set(volume_names("hal9000-parent").values()) <= set(kw["volumes"])
    assert "privileged" not in kw and "SYS_ADMIN" in kw["cap_add"]
    assert kw["labels"][labels.ROLE] == labels.ROLE_PARENT
    assert parent_kwargs(Config(), (), "/c", HostUser(1, 1), "privileged")["privileged"] is True


def test_resolve_security() -> None:
    assert resolve_security("auto", {"runc"}) == "caps"
    assert resolve_security("auto", {"runc", "sysbox-runc"}) == "sysbox"
    assert resolve_security("privileged", {"sysbox-runc"}) == "privileged"


def test_the_parent_is_told_the_path_policys_inputs() -> None:
    kw = parent_kwargs(
        Config(), ("/home/u", "/srv"), "/home/u/.config/hal9000", HostUser(7, 8, "/home/u"), "caps"
    )
    env = kw["environment"]
    assert env["HAL_ROOTS"] == "/home/u:/srv"
    assert env["HAL_HOST_HOME"] == "/home/u"
    assert env["HAL_HOST_CONFIG_DIR"] == "/home/u/.config/hal9000"
