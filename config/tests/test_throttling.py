"""The throttles' cache: the shared cache while it answers, this process's memory while it does not."""

import logging

import pytest

from config import throttling
from config.throttling import FallbackCache
from tests.processes import CLOSED_PORT_REDIS, Records


@pytest.fixture
def log():
    records = Records()
    logger = logging.getLogger("config.throttling")
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


def events(records: Records) -> list[str]:
    return [record.msg["event"] for record in records.records]


def test_the_fallback_counts_locally_while_the_cache_is_down_and_goes_back_once_it_answers(settings, monkeypatch, log):
    shared = settings.CACHES["default"]
    settings.CACHES = {"default": shared, "flaky": {**shared, "LOCATION": CLOSED_PORT_REDIS}}
    monkeypatch.setattr(throttling, "RETRY_SECONDS", 0)  # try the shared cache on every call
    fallback = FallbackCache("flaky")

    fallback.set("history", [1.0], 60)
    fallback.set("history", [1.0, 2.0], 60)
    assert fallback.get("history") == [1.0, 2.0]  # kept in local memory
    assert events(log) == ["throttle_cache_unavailable"]  # once for the outage, not per call

    settings.CACHES = {"default": shared, "flaky": shared}  # the cache answers again
    assert fallback.get("history") is None  # the shared cache's (empty) count, not the local one
    fallback.set("history", [3.0], 60)
    assert fallback.get("history") == [3.0]
    assert throttling.caches["flaky"].get("history") == [3.0]
    assert events(log) == ["throttle_cache_unavailable", "throttle_cache_restored"]
