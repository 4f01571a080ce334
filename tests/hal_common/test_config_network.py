"""`[network]`: typed, checked with file:line:column (at the bad entry), and live."""

from __future__ import annotations

import pytest

from hal_common.config import NetworkConfig, parse_config, resolve
from hal_common.config_diff import diff
from hal_common.config_schema import find_key
from hal_common.egress import policy
from hal_common.errors import ConfigError


def test_defaults_are_the_allowlist_with_nothing_added() -> None:
    cfg = parse_config("")
    assert cfg.network == NetworkConfig("allowlist", ())
    assert policy(cfg.network.mode, cfg.network.allow).mode == "allowlist"


def test_the_file_sets_mode_and_entries() -> None:
    cfg = parse_config(
        '[network]\nmode = "open"\nallow = ["example.com", "*.corp.example:8443", '
        '"10.1.2.0/24", "[::1]:9000"]\n'
    )
    assert cfg.network.mode == "open"
    assert cfg.network.allow == ("example.com", "*.corp.example:8443", "10.1.2.0/24", "[::1]:9000")


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ('[network]\nmode = "closed"\n', "config.toml:2:8:", "expected one of allowlist, open"),
        ('[network]\nallow = "example.com"\n', "config.toml:2:9:", "must be an array of strings"),
        ("[network]\nallow = [1, 2]\n", "config.toml:2:9:", "must be an array of strings"),
        (
            '[network]\nallow = [\n  "ok.example",\n  "bad..name",\n]\n',
            "config.toml:4:3:",
            "'bad..name' is not a host name",
        ),
        (
            "[network]\nallow = ['ok.example', 'x.example:0']\n",
            "config.toml:2:24:",
            "'x.example:0' has port '0'",
        ),
        ('[network]\nallow = ["10.1.2.3/24"]\n', "config.toml:2:10:", "did you mean '10.1.2.0/24'"),
    ],
)
def test_bad_values_name_file_line_column(text: str, where: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert e.value.message.startswith(where), e.value.message
    assert says in e.value.message


def test_the_environment_sets_them_too() -> None:
    env = {"HAL9000_NETWORK_ALLOW": '["a.example", "b.example:22"]', "HAL9000_NETWORK_MODE": "open"}
    r = resolve(None, env=env)
    assert r.config.network == NetworkConfig("open", ("a.example", "b.example:22"))
    assert r.get("network.allow") is not None and r.get("network.allow").origin == "env"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="HAL9000_NETWORK_ALLOW"):
        resolve(None, env={"HAL9000_NETWORK_ALLOW": '["x:99999"]'})


def test_a_change_is_live() -> None:
    old = parse_config("")
    new = parse_config('[network]\nallow = ["example.com"]\n')
    changes = diff(old, new)
    assert changes.network == ("network.allow",)
    assert changes.live and not changes.restart_needed and not changes.worker_template
    assert diff(
        new, parse_config('[network]\nmode = "open"\nallow = ["example.com"]\n')
    ).network == ("network.mode",)
    spec = find_key("network", "allow")
    assert spec is not None and spec.apply == "network"
