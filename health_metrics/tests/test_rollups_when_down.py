"""Rollups when the broker or the cache is down: a write still answers, and no recompute is blocked or lost.

The end-to-end outage (a real broker stopped under a served app and worker, then the nightly
reconciliation) is in tests/test_dependencies_down.py.
"""

from datetime import date

import pytest
from django.core.cache import cache, caches

from health_metrics.models import DailySummary
from health_metrics.services import _pending_key
from tests.processes import CLOSED_PORT_REDIS, broker_unreachable, purge, queue_length

pytestmark = pytest.mark.django_db

READINGS = "/api/v1/health-metrics/"
DAY = date(2026, 11, 3)
HEART_RATE = 2


def post(client, value, at):
    response = client.post(READINGS, {"metric_type": "heart_rate", "value": value, "recorded_at": at}, format="json")
    assert response.status_code == 201, response.json()


def test_a_failed_publish_leaves_no_pending_mark_so_the_next_write_publishes(
    as_user, user, not_eager, django_capture_on_commit_callbacks
):
    purge("default")
    try:
        with broker_unreachable(), django_capture_on_commit_callbacks(execute=True):
            post(as_user, 60, "2026-11-03T08:00:00Z")
        assert cache.get(_pending_key(user.pk, HEART_RATE, DAY.isoformat())) is None
        assert queue_length("default") == 0  # nothing was published

        with django_capture_on_commit_callbacks(execute=True):
            post(as_user, 70, "2026-11-03T09:00:00Z")  # the broker is back
        assert queue_length("default") == 1  # this day's recompute, for both readings
        assert cache.get(_pending_key(user.pk, HEART_RATE, DAY.isoformat())) == 1
    finally:
        purge("default")


def test_with_the_cache_unreachable_a_write_still_rolls_up_its_day(
    as_user, user, settings, django_capture_on_commit_callbacks
):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": CLOSED_PORT_REDIS}}
    assert caches["default"]._servers == [CLOSED_PORT_REDIS]
    with django_capture_on_commit_callbacks(execute=True):
        post(as_user, 60, "2026-11-03T08:00:00Z")
        post(as_user, 70, "2026-11-03T09:00:00Z")  # uncoalesced: its own recompute
    summary = DailySummary.objects.get(user=user, metric_type_id=HEART_RATE, local_date=DAY)
    assert (summary.count, summary.sum) == (2, 130)
