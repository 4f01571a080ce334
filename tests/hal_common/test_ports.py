"""Ports: the config keys (typed, checked at file:line:column), the published range, a URL."""

from __future__ import annotations

import pytest

from hal_common.config import parse_config
from hal_common.config_diff import diff
from hal_common.config_schema import find_key
from hal_common.errors import ConfigError
from hal_common.ports import (
    PortRange,
    format_ports,
    next_free,
    parse_ports,
    parse_range,
    url,
)


def test_defaults_publish_ten_loopback_ports_and_workers_list_none() -> None:
    cfg = parse_config("")
    assert cfg.worker.ports == ()
    assert parse_range(cfg.parent.ports) == PortRange(47100, 47109)
    assert cfg.parent.ports_address == "127.0.0.1"


def test_the_file_sets_them() -> None:
    cfg = parse_config(
        '[parent]\nports = "50000-50004"\nports_address = "0.0.0.0"\n\n'
        "[worker]\nports = [3000, 8080]\n"
    )
    assert cfg.worker.ports == (3000, 8080)
    assert parse_range(cfg.parent.ports) == PortRange(50000, 50004)
    assert parse_config('[parent]\nports = ""\n').parent.ports == ""


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("[worker]\nports = 3000\n", "config.toml:2:9:", "must be an array of port numbers"),
        ('[worker]\nports = ["3000"]\n', "config.toml:2:9:", "must be an array of port numbers"),
        ("[worker]\nports = [0]\n", "config.toml:2:9:", "has 0, which is not a port"),
        ("[worker]\nports = [70000]\n", "config.toml:2:9:", "has 70000, which is not a port"),
        ("[worker]\nports = [3000, 3000]\n", "config.toml:2:9:", "lists 3000 twice"),
        ('[parent]\nports = "abc"\n', "config.toml:2:9:", "is not a port range"),
        ('[parent]\nports = "80-90"\n', "config.toml:2:9:", "must be 1024 to 65535"),
        ('[parent]\nports = "5000-4000"\n', "config.toml:2:9:", "ends before it starts"),
        ('[parent]\nports = "40000-40200"\n', "config.toml:2:9:", "at most 100"),
        ('[parent]\nports_address = "localhost"\n', "config.toml:2:17:", "not an IP address"),
    ],
)
def test_bad_values_are_refused_where_they_are(text: str, where: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="config.toml")
    assert where in str(e.value) and says in str(e.value), str(e.value)


def test_how_a_change_applies() -> None:
    worker, parent = find_key("worker", "ports"), find_key("parent", "ports")
    assert worker is not None and worker.apply == "worker_template"  # new workers
    assert parent is not None and parent.apply == "restart"  # published at create
    changes = diff(parse_config(""), parse_config('[parent]\nports = "47200-47209"\n'))
    assert changes.restart_needed == ("parent.ports",)


def test_an_env_override_takes_an_array() -> None:
    cfg = parse_config("", env={"HAL9000_WORKER_PORTS": "[5173, 3000]"})
    assert cfg.worker.ports == (5173, 3000)


def test_next_free_skips_past_the_taken_port() -> None:
    taken = {47100, 47112}
    wanted = PortRange(47100, 47109)
    assert next_free(wanted, lambda p: False) == (None, wanted)
    # 47100 is held: the next ten from 47101 are free (47112 lies above them)
    assert next_free(wanted, taken.__contains__) == (47100, PortRange(47101, 47110))
    blocked = set(range(47100, 47120, 5))  # every fifth port up to 47115: five free after it
    held, found = next_free(PortRange(47100, 47104), blocked.__contains__)
    assert held == 47100 and found == PortRange(47116, 47120)
    assert next_free(PortRange(65530, 65535), lambda p: p == 65535) == (65535, None)


def test_url_and_labels() -> None:
    assert url("127.0.0.1", 47100) == "http://127.0.0.1:47100"
    assert url("0.0.0.0", 47100) == "http://127.0.0.1:47100"  # noqa: S104 - a value
    assert url("::1", 47100) == "http://[::1]:47100"
    assert parse_ports(format_ports((3000, 8080))) == (3000, 8080)
    assert parse_ports("3000,x,0,99999,3000") == (3000,)
