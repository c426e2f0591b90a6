"""The echo services' descriptors: built from options, reconfigured while running, attacked over loopback."""

from __future__ import annotations

import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from suite.echo import ECHO_SERVICE, UDP_ECHO_SERVICE
from suite.testing import build_service, service_config
from tests.helpers import connect_collector

PEER = IPv4Address("TCP", "192.0.2.7", 40000)


def test_reload_changes_the_idle_timeout_of_open_connections() -> None:
    clock = Clock()
    factory = build_service("echo", reactor=clock, echo_idle_timeout=300.0)
    proto = factory.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    proto.makeConnection(transport)
    ECHO_SERVICE.reconfigure(factory, service_config("echo", echo_idle_timeout=5.0, echo_max_per_ip=1))
    clock.advance(5)
    assert transport.disconnecting, "idle for the new, shorter timeout: aborted"
    assert factory.admission.max_per_ip == 1


def test_reload_changes_udp_rates_and_keeps_the_own_port_denied() -> None:
    clock = Clock()
    proto = build_service("udp-echo", reactor=clock, udp_rate=5.0, udp_burst=5)
    proto._own_port = 8007
    proto.deny_ports.add(8007)
    UDP_ECHO_SERVICE.reconfigure(proto, service_config("udp-echo", udp_rate=0.0, udp_deny_port=[9000]))
    assert proto.per_source.rate is None
    assert proto.deny_ports == {8007, 9000}


@pytest_twisted.ensureDeferred
async def test_per_ip_cap_attacked_over_loopback(serve, caplog_events) -> None:
    """Three connections from one host against --echo-max-per-ip 2: the third is refused and logged once."""
    port = await serve("echo", echo_max_per_ip=2)
    first, second = await connect_collector(port), await connect_collector(port)
    for client in (first, second):
        client.transport.write(b"hi")
        await client.wait_for(2)
    refused = [await connect_collector(port) for _ in range(3)]
    for client in refused:
        assert isinstance(await client.lost, ConnectionDone)
        assert bytes(client.received) == b"error: too many connections from 127.0.0.1 (limit 2)\r\n"
    logged = [e for e in caplog_events if "refused {peer}" in e.get("log_format", "")]
    assert len(logged) == 1, "once per peer host, throttled"
    assert logged[0]["peer"].startswith("127.0.0.1:") and logged[0]["service"] == "echo"
    factory = serve.targets[-1]
    assert factory.admission.refused == {"max-per-ip": 3}
    for client in (first, second):
        client.transport.loseConnection()
        await client.lost
