"""The shared admission policy: caps, exemptions, reloads, the refusal log."""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from suite.echo import EchoFactory


def connect(factory: EchoFactory, peer) -> StringTransport:
    proto = factory.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer)
    proto.makeConnection(transport)
    transport.proto = proto  # type: ignore[attr-defined]
    return transport


def test_an_exemption_changed_by_a_reload_leaks_no_slot() -> None:
    factory = EchoFactory(max_per_ip=2, reactor=Clock())
    policy = factory.admission
    peer = IPv4Address("TCP", "127.0.0.1", 1)
    first, second = connect(factory, peer), connect(factory, peer)
    policy.configure(max_connections=None, max_per_ip=2, exempt=["127.0.0.1"])
    for t in (first, second):
        t.proto.connectionLost(None)
    policy.configure(max_connections=None, max_per_ip=2, exempt=[])
    assert not connect(factory, peer).disconnecting
    assert policy.open == 1 and policy.connections_from("127.0.0.1") == 1
    # And the other way round: admitted while exempt, closed after the exemption went.
    policy.configure(max_connections=None, max_per_ip=2, exempt=["127.0.0.1"])
    exempt = [connect(factory, peer) for _ in range(3)]
    policy.configure(max_connections=None, max_per_ip=2, exempt=[])
    for t in exempt:
        t.proto.connectionLost(None)
    assert policy.connections_from("127.0.0.1") == 1


def test_ipv4_clients_of_a_dual_stack_listener_count_and_exempt_as_ipv4() -> None:
    factory = EchoFactory(max_per_ip=1, per_ip_exempt=["::ffff:127.0.0.1"], reactor=Clock())
    mapped = IPv6Address("TCP", "::ffff:127.0.0.1", 1)
    assert not connect(factory, mapped).disconnecting
    assert not connect(factory, mapped).disconnecting  # exempt, whichever way it was written
    assert factory.admission.exempt == {"127.0.0.1"}
    other = IPv6Address("TCP", "::ffff:192.0.2.9", 1)
    assert not connect(factory, other).disconnecting
    assert connect(factory, IPv4Address("TCP", "192.0.2.9", 2)).disconnecting  # the same host


def test_the_refusal_log_is_bounded_across_many_hosts(caplog_events) -> None:
    clock = Clock()
    factory = EchoFactory(max_connections=1, reactor=clock)
    connect(factory, IPv4Address("TCP", "10.0.0.1", 1))
    for i in range(1000):
        connect(factory, IPv4Address("TCP", f"10.1.{i // 250}.{i % 250}", 1))
    refusals = [e for e in caplog_events if "refused {peer}" in e.get("log_format", "")]
    assert len(refusals) == 100
    clock.advance(60)
    connect(factory, IPv4Address("TCP", "10.2.0.1", 1))
    last = [e for e in caplog_events if "refused {peer}" in e.get("log_format", "")][-1]
    assert last["others"] == 900


def test_the_file_limit_is_raised_to_fit_the_caps() -> None:
    import resource

    from suite.admission import raise_file_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert raise_file_limit(500) is None or hard < 564
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= min(564, hard)
        if hard != resource.RLIM_INFINITY:
            assert "open-file limit" in raise_file_limit(hard * 2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
