"""The allowlist's entries and the policy's verdicts, as tables."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from hal_common.egress import (
    DEFAULT_ALLOW,
    DENY_PORT,
    DENY_SPECIAL,
    DENY_UNLISTED,
    RULE_OPEN,
    check_allow,
    is_special,
    parse_entry,
    policy,
    proxy_env,
)


@pytest.mark.parametrize(
    ("text", "canonical", "kind", "port"),
    [
        ("example.com", "example.com", "name", None),
        ("Example.COM.", "example.com", "name", None),
        ("  example.com  ", "example.com", "name", None),
        ("example.com:8443", "example.com:8443", "name", 8443),
        ("*.corp.example:8443", "*.corp.example:8443", "suffix", 8443),
        ("*.GitHub.com", "*.github.com", "suffix", None),
        ("host_name.internal", "host_name.internal", "name", None),
        ("localhost", "localhost", "name", None),
        ("1e100.net", "1e100.net", "name", None),
        ("192.0.2.7", "192.0.2.7", "net", None),
        ("192.0.2.7:80", "192.0.2.7:80", "net", 80),
        ("10.1.2.0/24", "10.1.2.0/24", "net", None),
        ("10.1.2.0/24:22", "10.1.2.0/24:22", "net", 22),
        ("2001:db8::1", "2001:db8::1", "net", None),
        ("2001:DB8::1", "2001:db8::1", "net", None),
        ("[2001:db8::1]", "2001:db8::1", "net", None),
        ("[2001:db8::1]:443", "[2001:db8::1]:443", "net", 443),
        ("2001:db8::/32", "2001:db8::/32", "net", None),
        ("[2001:db8::/32]:443", "[2001:db8::/32]:443", "net", 443),
        ("[::1]:8080", "[::1]:8080", "net", 8080),
        ("127.0.0.1:65535", "127.0.0.1:65535", "net", 65535),
    ],
)
def test_entries_parse(text: str, canonical: str, kind: str, port: int | None) -> None:
    e = parse_entry(text)
    assert (e.text, e.kind, e.port) == (canonical, kind, port)
    assert parse_entry(e.text) == e  # the canonical spelling parses to the same entry


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("exa mple.com", "space"),
        ("example.com:0", "port '0'"),
        ("example.com:65536", "port '65536'"),
        ("example.com:http", "port 'http'"),
        ("example.com:", "port ''"),
        ("*", "every host"),
        ("*.", "every host"),
        ("*.*.example.com", "not a host name"),
        ("foo.*.example.com", "not a host name"),
        ("a..b", "not a host name"),
        ("-bad.example", "not a host name"),
        ("bad-.example", "not a host name"),
        ("x" * 64 + ".example", "not a host name"),
        ("exämple.com", "IDNA"),
        ("http://example.com", "URL"),
        ("example.com/path", "not a host name"),
        ("10.0.0.0/8/x", "URL"),
        ("10.1.2.3/24", "did you mean '10.1.2.0/24'"),
        ("10.0.0.0/33", "not an IP address or network"),
        ("999.1.1.1", "not an IP address or network"),
        ("1.2.3", "not an IP address or network"),
        ("[2001:db8::1", "does not close"),
        ("[2001:db8::1]443", "after ']'"),
        ("[2001:db8::1]:x", "port 'x'"),
        ("fe80::1%eth0", "zone"),
        ("2001:db8::1:443:x", "not an IP address"),
    ],
)
def test_bad_entries_say_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as e:
        parse_entry(text)
    assert says in str(e.value)


def test_check_allow_names_the_first_bad_entry() -> None:
    assert check_allow(["example.com", "10.0.0.0/8"]) is None
    problem = check_allow(["example.com", "bad..name", "x:0"])
    assert problem is not None and "'bad..name'" in problem


def test_defaults_parse_and_cover_what_claude_code_and_the_registries_need() -> None:
    p = policy("allowlist", [])
    assert len(p.allow) == len(DEFAULT_ALLOW)
    public = ip_address("8.8.4.4")  # only ever compared, never contacted
    for host, port in [
        ("api.anthropic.com", 443),
        ("platform.claude.com", 443),
        ("claude.ai", 443),
        ("console.anthropic.com", 443),
        ("statsig.anthropic.com", 443),
        ("registry.npmjs.org", 443),
        ("pypi.org", 443),
        ("files.pythonhosted.org", 443),
        ("deb.debian.org", 80),
        ("security.debian.org", 443),
        ("github.com", 443),
        ("api.github.com", 443),
        ("codeload.github.com", 443),
        ("raw.githubusercontent.com", 443),
        ("objects.githubusercontent.com", 443),
    ]:
        assert p.decide(host, port, public).allowed, (host, port)
    assert not p.decide("api.anthropic.com", 80, public).allowed
    assert not p.decide("evil.example", 443, public).allowed


ADDR = {
    "public": "8.8.4.4",
    "public6": "2606:4700:4700::1111",
    "loopback": "127.0.0.1",
    "loopback2": "127.1.2.3",
    "loopback6": "::1",
    "private10": "10.1.2.3",
    "private172": "172.17.0.1",
    "private192": "192.168.1.1",
    "gateway": "10.213.213.1",
    "metadata": "169.254.169.254",
    "linklocal6": "fe80::1",
    "cgnat": "100.64.0.1",
    "ula": "fd00::1",
    "unspecified": "0.0.0.0",  # noqa: S104 - an address compared, nothing bound
    "unspecified6": "::",
    "multicast": "224.0.0.1",
    "multicast6": "ff02::1",
    "broadcast": "255.255.255.255",
    "reserved": "240.0.0.1",
    "doc": "192.0.2.1",
    "benchmark": "198.18.0.1",
    "mapped": "::ffff:127.0.0.1",
    "mapped_public": "::ffff:8.8.4.4",
    "nat64": "64:ff9b::a00:1",
    "6to4": "2002:a00:1::1",
    "teredo": "2001::1",
    "own": "203.0.113.200",  # given as the parent's own below (also documentation)
    "own_public": "9.9.9.9",
}


@pytest.mark.parametrize("name", [n for n in ADDR if not n.startswith("public")])
def test_special_addresses(name: str) -> None:
    own = [ip_address(ADDR["own"]), ip_address(ADDR["own_public"])]
    assert is_special(ip_address(ADDR[name]), own)


@pytest.mark.parametrize("name", ["public", "public6"])
def test_public_addresses(name: str) -> None:
    assert not is_special(ip_address(ADDR[name]))


ALLOW = [
    "example.com",
    "*.corp.example:8443",
    "10.1.2.0/24",
    "127.0.0.1:8080",
    "[::1]:9000",
    "intranet.example:80",
    "192.168.5.5",
]
OWN = [ip_address("9.9.9.9")]


@pytest.mark.parametrize(
    ("mode", "host", "port", "addr", "allowed", "rule"),
    [
        # names: the host matches and the address is public
        ("allowlist", "example.com", 443, "public", True, "example.com"),
        ("allowlist", "EXAMPLE.com.", 22, "public", True, "example.com"),
        ("allowlist", "example.com", 443, "public6", True, "example.com"),
        ("allowlist", "www.example.com", 443, "public", False, DENY_UNLISTED),
        ("allowlist", "example.com.evil", 443, "public", False, DENY_UNLISTED),
        ("allowlist", "notexample.com", 443, "public", False, DENY_UNLISTED),
        ("allowlist", "a.corp.example", 8443, "public", True, "*.corp.example:8443"),
        ("allowlist", "a.b.corp.example", 8443, "public", True, "*.corp.example:8443"),
        ("allowlist", "corp.example", 8443, "public", False, DENY_UNLISTED),
        ("allowlist", "a.corp.example", 443, "public", False, DENY_PORT),
        ("allowlist", "evilcorp.example", 8443, "public", False, DENY_UNLISTED),
        # a name that resolves to a special address is refused, whatever the name
        ("allowlist", "example.com", 443, "loopback", False, DENY_SPECIAL),
        ("allowlist", "example.com", 443, "metadata", False, DENY_SPECIAL),
        ("allowlist", "example.com", 443, "private192", False, DENY_SPECIAL),
        ("allowlist", "example.com", 443, "mapped", False, DENY_SPECIAL),
        ("allowlist", "example.com", 443, "own_public", False, DENY_SPECIAL),
        ("allowlist", "intranet.example", 80, "private10", True, "10.1.2.0/24"),
        # an IP/CIDR entry covers the address, by any name, with its port
        ("allowlist", "10.1.2.99", 5432, "private10", True, "10.1.2.0/24"),
        ("allowlist", "127.0.0.1", 8080, "loopback", True, "127.0.0.1:8080"),
        ("allowlist", "localhost", 8080, "loopback", True, "127.0.0.1:8080"),
        ("allowlist", "127.0.0.1", 8081, "loopback", False, DENY_SPECIAL),
        ("allowlist", "127.1.2.3", 8080, "loopback2", False, DENY_SPECIAL),
        ("allowlist", "::1", 9000, "loopback6", True, "[::1]:9000"),
        ("allowlist", "::1", 8080, "loopback6", False, DENY_SPECIAL),
        ("allowlist", "192.168.1.1", 80, "private192", False, DENY_SPECIAL),
        ("allowlist", "169.254.169.254", 80, "metadata", False, DENY_SPECIAL),
        ("allowlist", "10.213.213.1", 8811, "gateway", False, DENY_SPECIAL),
        ("allowlist", "8.8.4.4", 443, "public", False, DENY_UNLISTED),
        # open: any public address and port; special ones still need an entry
        ("open", "anything.example", 443, "public", True, RULE_OPEN),
        ("open", "anything.example", 25, "public6", True, RULE_OPEN),
        ("open", "8.8.4.4", 443, "public", True, RULE_OPEN),
        ("open", "example.com", 443, "public", True, "example.com"),
        ("open", "anything.example", 443, "loopback", False, DENY_SPECIAL),
        ("open", "169.254.169.254", 80, "metadata", False, DENY_SPECIAL),
        ("open", "anything.example", 443, "cgnat", False, DENY_SPECIAL),
        ("open", "anything.example", 443, "ula", False, DENY_SPECIAL),
        ("open", "anything.example", 443, "own_public", False, DENY_SPECIAL),
        ("open", "x", 80, "nat64", False, DENY_SPECIAL),
        ("open", "10.1.2.7", 80, "private10", True, "10.1.2.0/24"),
    ],
)
def test_decide(mode: str, host: str, port: int, addr: str, allowed: bool, rule: str) -> None:
    p = policy(mode, ALLOW, own=OWN)
    v = p.decide(host, port, ip_address(ADDR.get(addr, addr)))
    assert (v.allowed, v.rule) == (allowed, rule)
    assert v.verdict == ("allow" if allowed else "deny")


@pytest.mark.parametrize(
    ("mode", "host", "port", "resolve"),
    [
        ("allowlist", "example.com", 443, True),
        ("allowlist", "a.corp.example", 8443, True),
        ("allowlist", "a.corp.example", 443, False),  # no entry for the port: no lookup
        ("allowlist", "secret-data.evil.example", 443, False),  # no DNS side channel
        ("allowlist", "10.9.9.9", 443, True),  # an address is decided on itself
        ("allowlist", "[::1]", 9000, True),
        ("open", "secret-data.evil.example", 443, True),
    ],
)
def test_may_resolve(mode: str, host: str, port: int, resolve: bool) -> None:
    p = policy(mode, ALLOW)
    v = p.may_resolve(host, port)
    assert (v is None) == resolve
    if v is not None:
        assert not v.allowed


def test_policy_refuses_a_bad_mode_or_entry_and_merges_duplicates() -> None:
    with pytest.raises(ValueError, match="mode"):
        policy("closed", [])
    with pytest.raises(ValueError, match="not a host name"):
        policy("allowlist", ["ok.example", "bad..example"])
    p = policy("allowlist", ["pypi.org:443", "PyPI.org:443"])
    assert len(p.allow) == len(DEFAULT_ALLOW)


def test_proxy_env_names_the_gateway_and_keeps_it_direct() -> None:
    env = proxy_env()
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://10.213.213.1:3128"
    assert "10.213.213.1" in env["NO_PROXY"].split(",")
