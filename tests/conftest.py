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
