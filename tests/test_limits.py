"""Shared limits: token buckets, rate tables, connection caps, throttled logs."""

import pytest
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel

from suite.limits import ConnectionLimit, RateLimiterTable, ThrottledLog, TokenBucket


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
    assert bucket.tokens == 3
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
    assert limit.count("10.0.0.1") == 0
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
