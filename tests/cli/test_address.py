"""HOST:PORT arguments."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suite.cli.address import AddressError, HostPort, parse_host_port


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("localhost:8007", "localhost", 8007),
        ("127.0.0.1:1", "127.0.0.1", 1),
        ("[::1]:8007", "::1", 8007),
        ("[fe80::1%eth0]:80", "fe80::1%eth0", 80),
        ("example.com.:65535", "example.com.", 65535),
        ("bücher.example:21", "bücher.example", 21),
        ("my_host-1:99", "my_host-1", 99),
    ],
)
def test_parse(text: str, host: str, port: int) -> None:
    assert parse_host_port(text) == HostPort(host, port)


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("localhost", "expected HOST:PORT"),
        (":8007", "missing host"),
        ("::1:8007", "brackets"),
        ("[::1]8007", "missing ':PORT'"),
        ("[::1:8007", "missing ']'"),
        ("[nothex]:1", "not an IPv6 address"),
        ("host:0", "1-65535"),
        ("host:65536", "1-65535"),
        ("host:http", "1-65535"),
        ("host:", "1-65535"),
        ("bad host:1", "not a valid host"),
        ("-bad:1", "not a valid host"),
        ("a..b:1", "not a valid host"),
    ],
)
def test_errors(text: str, complaint: str) -> None:
    with pytest.raises(AddressError, match=complaint):
        parse_host_port(text)


def test_default_host() -> None:
    assert parse_host_port("8007", default_host="127.0.0.1") == HostPort("127.0.0.1", 8007)
    assert parse_host_port(":8007", default_host="::") == HostPort("::", 8007)


@given(
    host=st.one_of(
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(str),
        st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}\Z"),
    ),
    port=st.integers(1, 65535),
)
def test_round_trip(host: str, port: int) -> None:
    parsed = parse_host_port(str(HostPort(host, port)))
    assert parsed == HostPort(host, port)


@given(st.text(max_size=40))
def test_only_address_errors(text: str) -> None:
    try:
        parsed = parse_host_port(text)
    except AddressError as e:
        assert str(e)
    else:
        assert 1 <= parsed.port <= 65535 and parsed.host
