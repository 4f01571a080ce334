"""The parent container's create arguments and its security mode."""

from __future__ import annotations

from hal_common import labels
from hal_common.config import Config, resolve
from host_shim.core.parent_spec import (
    HostUser,
    config_env,
    env_restart_needed,
    parent_kwargs,
    resolve_security,
    volume_names,
)


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


def test_the_run_directory_is_a_tmpfs_so_no_restart_keeps_stale_state() -> None:
    from hal_common.layout import RUN_DIR

    kw = parent_kwargs(Config(), ("/h",), "/h/.config/hal9000", HostUser(1, 1), "caps")
    opts = kw["tmpfs"][str(RUN_DIR)].split(",")
    assert "rw" in opts and "mode=0755" in opts and "nosuid" in opts
    assert any(o.startswith("size=") for o in opts)
    # the ready file, dockerd's pid file and every socket live in it
    from host_shim.core.parent_spec import PARENT_LAYOUT

    for path in (
        PARENT_LAYOUT.ready_file,
        PARENT_LAYOUT.dockerd_pidfile,
        PARENT_LAYOUT.inner_docker_sock,
        PARENT_LAYOUT.tmux_sock,
        PARENT_LAYOUT.control_socket,
    ):
        assert path.is_relative_to(RUN_DIR), path
    assert str(RUN_DIR) not in kw["volumes"]  # no volume over it


def test_the_stop_timeout_covers_the_ordered_shutdown_and_a_reboot_brings_it_back() -> None:
    import inspect

    from parent_agent.adapters.dockerd import Dockerd
    from parent_agent.adapters.workers import stop_all

    kw = parent_kwargs(Config(), ("/h",), "/h/.config/hal9000", HostUser(1, 1), "caps")
    # the parent's shutdown: workers (each its timeout, in parallel), then dockerd; the host's
    # dockerd waits StopTimeout + 5 s, inside systemd's default 90 s for docker.service
    workers = inspect.signature(stop_all).parameters["timeout"].default
    dockerd = inspect.signature(Dockerd.stop).parameters["timeout"].default
    assert workers + dockerd < kw["stop_timeout"] <= 85
    assert kw["restart_policy"] == {"Name": "unless-stopped"}  # back after a reboot, not after stop


HOST_ENV = {
    "HAL9000_WORKER_MEMORY": "2g",
    "HAL9000_DASHBOARD_REFRESH": "0.5",
    "HAL9000_OFFLINE": "1",  # claudy's own, not config
    "HAL9000_CONFIG": "/elsewhere/config.toml",  # the file's path, not a key
    "HAL9000_NPM_REGISTRY": "http://127.0.0.1:1",
    "HAL9000_WORKER_MEMROY": "1g",  # misspelt: the env layer warns, it is not passed on
    "PATH": "/usr/bin",
}


def test_the_parent_gets_the_hosts_config_overrides_and_only_those() -> None:
    wanted = config_env(HOST_ENV)
    assert wanted == {"HAL9000_DASHBOARD_REFRESH": "0.5", "HAL9000_WORKER_MEMORY": "2g"}
    kw = parent_kwargs(Config(), ("/h",), "/c", HostUser(1, 1), "caps", overrides=wanted)
    assert kw["environment"]["HAL9000_WORKER_MEMORY"] == "2g"
    assert "HAL9000_OFFLINE" not in kw["environment"]
    # the same names the config's env layer reads: the parent resolves what the host does
    host = resolve(None, env=HOST_ENV).config
    inside = resolve(None, env=kw["environment"]).config
    assert inside.worker == host.worker and inside.dashboard == host.dashboard


def test_an_override_set_changed_or_unset_since_the_create_needs_a_restart() -> None:
    made = [
        "PATH=/usr/bin",
        "HAL_HOST_UID=1",
        "HAL9000_WORKER_MEMORY=2g",
        "HAL9000_LOG_LEVEL=debug",
    ]
    assert (
        env_restart_needed({"HAL9000_WORKER_MEMORY": "2g", "HAL9000_LOG_LEVEL": "debug"}, made)
        == ()
    )
    assert env_restart_needed(
        {"HAL9000_WORKER_MEMORY": "3g", "HAL9000_KEYS_PREFIX": "C-a"}, made
    ) == ("HAL9000_KEYS_PREFIX", "HAL9000_LOG_LEVEL", "HAL9000_WORKER_MEMORY")
    # claudy's own variables never count, on either side
    assert env_restart_needed({}, ["HAL9000_OFFLINE=1", "HAL9000_CONFIG=/x"]) == ()


def test_the_parent_publishes_its_range_on_the_loopback_and_tells_the_agent() -> None:
    from hal_common.ports import PortRange

    kw = parent_kwargs(
        Config(), (), "/c", HostUser(1, 1), "caps", published=PortRange(47100, 47102)
    )
    assert kw["ports"] == {
        "47100/tcp": ("127.0.0.1", 47100),
        "47101/tcp": ("127.0.0.1", 47101),
        "47102/tcp": ("127.0.0.1", 47102),
    }
    assert kw["environment"]["HAL_PORTS"] == "47100-47102"
    assert kw["environment"]["HAL_PORTS_ADDRESS"] == "127.0.0.1"
    assert kw["labels"][labels.PORTS] == "47100-47102"
    bare = parent_kwargs(Config(), (), "/c", HostUser(1, 1), "caps")
    assert "ports" not in bare and "HAL_PORTS" not in bare["environment"]


def test_the_hosts_ssh_agent_is_bound_only_when_wanted_and_a_new_one_needs_a_restart() -> None:
    from host_shim.core.parent_spec import ssh_restart_needed

    args = (Config(), ("/h",), "/c", HostUser(1, 1), "caps")
    none = parent_kwargs(*args)
    assert "/run/hal9000-ssh-agent.sock" not in {v["bind"] for v in none["volumes"].values()}
    assert none["labels"][labels.SSH_AGENT] == ""
    kw = parent_kwargs(*args, ssh_agent="/tmp/ssh-X/agent.1")
    assert kw["volumes"]["/tmp/ssh-X/agent.1"] == {
        "bind": "/run/hal9000-ssh-agent.sock",
        "mode": "rw",
    }
    assert kw["labels"][labels.SSH_AGENT] == "/tmp/ssh-X/agent.1"
    assert not ssh_restart_needed("", kw["labels"])  # not wanted: never a reason
    assert not ssh_restart_needed("/tmp/ssh-X/agent.1", kw["labels"])
    assert ssh_restart_needed("/tmp/ssh-Y/agent.2", kw["labels"])  # a new login
    assert ssh_restart_needed("/tmp/ssh-X/agent.1", none["labels"])  # the first opt-in
    assert ssh_restart_needed("/tmp/ssh-X/agent.1", {})  # a parent made before
