"""A worker's spec and create arguments, and whose uid it runs as."""

from __future__ import annotations

from hal_common import labels
from hal_common.config import Config, WorkerConfig
from hal_common.config_layers import Collector, env_layer, file_layer, parse_toml
from hal_common.egress import GATEWAY, WORKER_NETWORK, proxy_env
from hal_common.naming import container_name, session_name
from parent_agent.core.spec import create_kwargs, pick_owner, worker_spec


def test_worker_spec_and_create_kwargs() -> None:
    cfg = WorkerConfig(memory="1g", cpus=1.5, pids=100, env=("FOO", "MISSING"))
    spec = worker_spec("/home/u/p", cfg, 1000, 1001, environ={"FOO": "1", "SECRET": "x"})
    kw = create_kwargs(spec, "/config/claude")
    assert kw["name"] == container_name(session_name("/home/u/p"))
    assert kw["user"] == "1000:1001" and kw["working_dir"] == "/home/u/p"
    assert kw["volumes"]["/home/u/p"] == {"bind": "/home/u/p", "mode": "rw"}
    assert kw["volumes"]["/config/claude"]["bind"] == "/home/hal/.claude"
    assert kw["environment"] == {"FOO": "1", **proxy_env()}
    assert kw["mem_limit"] == 1 << 30 and kw["nano_cpus"] == 1_500_000_000
    assert kw["pids_limit"] == 100 and kw["init"] is True
    assert kw["labels"][labels.SESSION] == spec.session
    assert kw["labels"][labels.PROJECT] == "/home/u/p"
    assert kw["labels"][labels.MANAGED] == "true"


def test_pick_owner_prefers_the_host_user_then_the_project_owner() -> None:
    assert pick_owner(1000, 1000, 0, 0) == (1000, 1000)
    assert pick_owner(0, 0, 1234, 1235) == (1234, 1235)
    assert pick_owner(0, 0, 0, 0) == (0, 0)  # root's own project, opened by root


def test_a_worker_is_on_the_internal_network_with_the_proxy_and_no_dns() -> None:
    # [worker].env cannot name another way out: the proxy's variables win
    cfg = WorkerConfig(env=("HTTPS_PROXY", "no_proxy", "FOO"))
    environ = {"HTTPS_PROXY": "http://evil:1", "no_proxy": "*", "FOO": "1"}
    kw = create_kwargs(worker_spec("/p", cfg, 1000, 1000, environ), "/config/claude")
    assert kw["network"] == WORKER_NETWORK and "network_mode" not in kw
    assert kw["dns"] == [GATEWAY] and kw["dns_opt"] == ["timeout:1", "attempts:1"]
    assert kw["environment"]["HTTPS_PROXY"] == f"http://{GATEWAY}:3128"
    assert kw["environment"]["https_proxy"] == kw["environment"]["http_proxy"]
    assert kw["environment"]["no_proxy"] == f"localhost,127.0.0.1,{GATEWAY}"
    assert kw["environment"]["FOO"] == "1"


def test_worker_network_is_retired_with_a_pointer_to_the_network_section() -> None:
    text = '[worker]\nnetwork = "host"\nmemory = "1g"\n'
    c = Collector("config.toml", text)
    values, _ = file_layer(parse_toml(text, "config.toml"), c)
    assert values == {("worker", "memory"): "1g"}
    (warning,) = c.warnings
    assert warning.startswith("config.toml:2:1: [worker].network is gone and ignored")
    assert "[network] mode" in warning
    c = Collector("environment", None)
    assert env_layer({"HAL9000_WORKER_NETWORK": "host"}, c) == {}
    assert "[network] mode" in c.warnings[0] and not c.errors
    assert not hasattr(Config().worker, "network")
