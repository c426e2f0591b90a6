"""Shared limits: token buckets, rate tables, connection caps, throttled logs."""

import pytest
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel

from suite.limits import ConnectionLimit, PeerLog, RateLimiterTable, ThrottledLog, TokenBucket, peer_text


def test_bucket_allows_burst_then_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert [bucket.consume() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.1)  # one token back
    assert bucket.consume()
    assert not bucket.consume()


def test_bucket_never_exceeds_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=100, burst=3, clock=clock)
    clock.advance(1000)
    assert sum(bucket.consume() for _ in range(10)) == 3


def test_bucket_unlimited() -> None:
    bucket = TokenBucket(rate=None, burst=1, clock=Clock())
    assert all(bucket.consume() for _ in range(10_000))


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_bucket_rejects_bad_settings(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, Clock())


def test_rate_table_is_per_key() -> None:
    table = RateLimiterTable(rate=1, burst=2, clock=Clock())
    assert [table.allow("a") for _ in range(3)] == [True, True, False]
    assert table.allow("b")


def test_rate_table_refills_on_its_timer() -> None:
    clock = Clock()
    table = RateLimiterTable(rate=4, burst=5, clock=clock, interval=0.25)
    table.start()
    assert sum(table.allow("a") for _ in range(10)) == 5
    clock.advance(0.25)  # one interval: one token
    assert [table.allow("a") for _ in range(2)] == [True, False]
    clock.advance(1.0)  # four intervals at once still count four times
    assert sum(table.allow("a") for _ in range(10)) == 4
    table.stop()
    assert not clock.getDelayedCalls()


def test_rate_table_forgets_full_buckets() -> None:
    clock = Clock()
    table = RateLimiterTable(rate=10, burst=5, clock=clock)
    table.start()
    table.allow("a")
    assert len(table) == 1
    clock.advance(1)
    assert len(table) == 0  # refilled to full: nothing to remember
    table.stop()


def test_rate_table_memory_is_bounded() -> None:
    table = RateLimiterTable(rate=1, burst=1, clock=Clock(), max_keys=100)
    for i in range(10_000):
        table.allow(i)
    assert len(table) == 100


def test_rate_table_forgets_oldest() -> None:
    table = RateLimiterTable(rate=1, burst=1, clock=Clock(), max_keys=2)
    table.allow("old")
    table.allow("busy")
    table.allow("new")  # the table is full: "old" is forgotten
    assert table.allow("old")  # a fresh bucket
    assert not table.allow("new")  # still remembered, bucket empty


def test_rate_table_unlimited() -> None:
    table = RateLimiterTable(rate=None, burst=1, clock=Clock())
    table.start()
    assert all(table.allow("a") for _ in range(1000))
    assert len(table) == 0


def test_connection_limit_total() -> None:
    limit = ConnectionLimit(max_total=2)
    assert limit.acquire("h1") is None
    assert limit.acquire("h2") is None
    assert limit.acquire("h3") == "too many connections (limit 2)"
    limit.release("h1")
    assert limit.acquire("h3") is None
    assert limit.total == 2


def test_connection_limit_per_host() -> None:
    limit = ConnectionLimit(max_total=None, max_per_host=1)
    assert limit.acquire("10.0.0.1") is None
    assert limit.acquire("10.0.0.1") == "too many connections from 10.0.0.1 (limit 1)"
    assert limit.acquire("10.0.0.2") is None
    assert limit.acquire(None) is None  # UNIX sockets have no host
    limit.release("10.0.0.1")
    assert limit.acquire("10.0.0.1") is None


def test_throttled_log() -> None:
    events: list[dict] = []
    clock = Clock()
    throttled = ThrottledLog(Logger(observer=events.append), clock, interval=10)
    assert throttled.warn("bad {x}", x=1)
    assert not throttled.warn("bad {x}", x=2)
    assert not throttled.warn("bad {x}", x=3)
    clock.advance(10)
    assert throttled.warn("bad {x}", x=4)
    assert [(e["x"], e["suppressed"]) for e in events] == [(1, 0), (4, 2)]
    assert all(e["log_level"] == LogLevel.warn for e in events)


def test_bucket_reconfigure_keeps_what_was_earned() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1, burst=10, clock=clock)
    assert sum(bucket.consume() for _ in range(4)) == 4
    bucket.reconfigure(rate=1, burst=3)  # 6 left, capped at the new burst
    assert sum(bucket.consume() for _ in range(10)) == 3
    bucket.reconfigure(rate=None, burst=3)
    assert all(bucket.consume() for _ in range(100))


def test_rate_table_honours_a_rate_above_burst_per_interval() -> None:
    """--udp-rate 10000000 with the default burst: the rate holds, not burst/interval."""
    clock = Clock()
    table = RateLimiterTable(rate=10_000_000, burst=2000, clock=clock, interval=0.1)
    table.start()
    answered = 0
    for _ in range(10):  # one second
        answered += sum(table.allow("a") for _ in range(200_000))
        clock.advance(0.1)
    assert answered >= 1_000_000  # 200,000 sent per interval, all within the rate
    table.stop()


def test_rate_table_reconfigure() -> None:
    clock = Clock()
    table = RateLimiterTable(rate=1, burst=5, clock=clock)
    table.start()
    assert sum(table.allow("a") for _ in range(10)) == 5
    table.reconfigure(rate=100, burst=5)
    clock.advance(0.1)  # 10 tokens per interval now: the bucket holds at least one interval's worth
    assert sum(table.allow("a") for _ in range(20)) == 10
    table.reconfigure(rate=None, burst=5)
    assert all(table.allow("a") for _ in range(100))
    table.stop()
    assert not clock.getDelayedCalls()


def test_peer_log_is_once_per_host_and_bounded() -> None:
    events: list[dict] = []
    clock = Clock()
    log = PeerLog(Logger(observer=events.append), clock, interval=60, max_peers=2)
    assert log.warn("10.0.0.1", "refused {peer}", peer="10.0.0.1:1")
    assert not log.warn("10.0.0.1", "refused {peer}", peer="10.0.0.1:2")
    assert log.warn("10.0.0.2", "refused {peer}", peer="10.0.0.2:1")  # another host: logged
    clock.advance(60)
    assert log.warn("10.0.0.1", "refused {peer}", peer="10.0.0.1:3")
    assert [(e["peer"], e["suppressed"]) for e in events] == [("10.0.0.1:1", 0), ("10.0.0.2:1", 0), ("10.0.0.1:3", 1)]
    for i in range(1000):
        log.warn(f"192.0.2.{i % 250}", "x")
    assert len(log._peers) <= 2


def test_peer_text() -> None:
    from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

    assert peer_text(IPv4Address("TCP", "127.0.0.1", 5555)) == "127.0.0.1:5555"
    assert peer_text(IPv6Address("TCP", "::1", 5555)) == "[::1]:5555"
    assert peer_text(UNIXAddress(b"/tmp/s")) == "local"
