"""Fixtures shared by all tests."""

from collections.abc import Iterator

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
