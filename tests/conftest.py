"""Fixtures shared by all tests."""

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import globalLogPublisher


@pytest.fixture
def caplog_events() -> Iterator[list[dict]]:
    """Every twisted.logger event emitted during the test."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves timers, listening ports or connections behind."""
    from twisted.internet import reactor

    before = set(reactor.getReaders()) | set(reactor.getWriters())
    yield
    pending = [c for c in reactor.getDelayedCalls() if c.active()]
    left = {
        s
        for s in (set(reactor.getReaders()) | set(reactor.getWriters())) - before
        if type(s).__name__ != "_SIGCHLDWaker"  # installed once, by the first spawnProcess
    }
    for call in pending:
        call.cancel()
    assert not pending, f"test left pending calls: {pending}"
    assert not left, f"test left open ports or connections: {left}"


@pytest.fixture
def chat_port() -> Iterator[int]:
    """A chat server (no per-IP cap) on 127.0.0.1; its port.  Closed, with every client, after the test."""
    import pytest_twisted
    from twisted.internet import defer, reactor

    from suite.chat import ChatFactory
    from tests.helpers import stop_tracked, track

    factory = track(ChatFactory(max_per_ip=None))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    yield port.getHost().port
    pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


from tests.redis_server import redis_server  # noqa: E402,F401 - the real redis-server fixture


@pytest.fixture
def serve() -> Iterator[Any]:
    """
    The loopback fixture for every service: ``port = await serve("chat",
    chat_max_line=100)`` builds the registered service from its options
    (as ``twistd netsuite`` does) and listens on a free 127.0.0.1 port;
    ``serve.targets[-1]`` is what it built.  Stopped after the test.
    """
    import pytest_twisted
    from twisted.internet import defer, reactor

    from suite.endpoints import ListeningService
    from suite.service import ServiceContext
    from suite.testing import _descriptor, service_config

    services: list[ListeningService] = []

    async def start(name: str, **values: Any) -> int:
        descriptor = _descriptor(name)
        kind = "udp" if descriptor.datagram else "tcp"
        config = service_config(descriptor, **values)
        target = descriptor.build(config, ServiceContext(reactor))
        service = ListeningService(descriptor.name, f"{kind}:0:interface=127.0.0.1", target, reactor)
        service.startService()
        services.append(service)
        start.targets.append(target)  # type: ignore[attr-defined]
        return service.port.getHost().port

    async def stop() -> None:
        from twisted.internet import task

        for service in services:
            await defer.maybeDeferred(service.stopService)
            policy = getattr(service.target, "admission", None)
            # The clients are closed; wait (bounded) for the server side to see it.
            for _ in range(500):
                if policy is None or policy.open == 0:
                    break
                await task.deferLater(reactor, 0.01, lambda: None)

    start.targets = []  # type: ignore[attr-defined]
    yield start
    pytest_twisted.blockon(defer.ensureDeferred(stop()))
