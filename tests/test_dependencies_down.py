"""Dependencies down: the app answers as usual, loses nothing, and catches up once they are back.

Real processes throughout (tests/processes.py): the app under `runserver` and a Celery worker,
both on this test's database, and the test's own `redis-server`s, which it really stops and
starts again, and a real SMTP peer. The app is asked over HTTP while a dependency is down; then
the dependency comes back, the sweepers run (what beat runs: the outbox every minute, the rollup
reconciliation nightly) and the final state is checked: every email sent once, every rollup right.
"""

from __future__ import annotations

import email
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import EmailKind, EmailStatus, OutboxEmail, User
from accounts.services import requeue_outbox_emails, send_outbox_email
from accounts.tests.factories import PASSWORD, UserFactory
from accounts.tokens import issue_tokens
from health_metrics.models import DailySummary, Reading
from health_metrics.services import stale_daily_summaries
from health_metrics.tasks import reconcile_daily_summaries_task
from tests.processes import (
    RedisServer,
    broker_at,
    http,
    smtp_peer,
    start_app_server,
    start_worker,
    stop,
    wait_for,
)

API = "/api/v1"


def _body(raw: str) -> str:
    message = email.message_from_string(raw)
    return message.get_payload(decode=True).decode()


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_auth_answers_and_every_email_is_sent_once_it_is_back(not_eager, tmp_path: Path):
    """Redis (the cache and the broker) stopped: sign-up, login, refresh and password reset answer as
    usual, a known and an unknown address alike; readiness names the cache and the broker. Redis back:
    the outbox sweeper hands the emails to a worker, and each is delivered once, with a working link."""
    known = UserFactory(email="known@example.org")
    redis_server = RedisServer(tmp_path / "redis.log")
    server = worker = None
    with smtp_peer() as (smtp_port, delivered):
        served = {
            "SERVED_CACHE_URL": redis_server.url,
            "SERVED_BROKER_URL": redis_server.url,
            "SERVED_SMTP_PORT": str(smtp_port),
        }
        try:
            redis_server.start()
            server, url = start_app_server(tmp_path / "server.log", env=served)
            assert http("GET", f"{url}/health/ready/")[0] == 200

            redis_server.stop()
            status, ready = http("GET", f"{url}/health/ready/")
            assert status == 503
            assert ready["down"] == ["broker", "cache"]

            signup = {
                "email": "new@example.org",
                "password": "a-Long-enough-passphrase-7",
                "password_confirm": "a-Long-enough-passphrase-7",
            }
            registered = http("POST", f"{url}{API}/auth/register/", signup)
            assert registered[0] == 201, registered
            reset_known = http("POST", f"{url}{API}/auth/password/reset/", {"email": "known@example.org"})
            reset_unknown = http("POST", f"{url}{API}/auth/password/reset/", {"email": "nobody@example.org"})
            assert reset_known == reset_unknown  # same status, same body: no account oracle
            assert reset_known[0] == 200
            logged_in = http("POST", f"{url}{API}/auth/login/", {"email": known.email, "password": PASSWORD})
            assert logged_in[0] == 200, logged_in
            refreshed = http("POST", f"{url}{API}/auth/token/refresh/", {"refresh": logged_in[1]["tokens"]["refresh"]})
            assert refreshed[0] == 200, refreshed
            reading = {"metric_type": "heart_rate", "value": 61, "recorded_at": "2026-11-03T08:00:00Z"}
            written = http("POST", f"{url}{API}/health-metrics/", reading, token=registered[1]["tokens"]["access"])
            assert written[0] == 201, written

            owed = OutboxEmail.objects.order_by("kind")
            assert [(e.kind, e.user.email, e.status) for e in owed] == [
                (EmailKind.PASSWORD_RESET, "known@example.org", EmailStatus.PENDING),
                (EmailKind.VERIFICATION, "new@example.org", EmailStatus.PENDING),
            ]
            assert delivered == []

            redis_server.start()  # back, and empty: what was published before the outage is gone too
            assert http("GET", f"{url}/health/ready/")[0] == 200
            worker_log = tmp_path / "worker.log"
            worker = start_worker(worker_log, queues=("default",), settings_module="tests.served_settings", env=served)
            with broker_at(redis_server.url):  # this process publishes where the worker consumes
                assert requeue_outbox_emails(now=timezone.now() + timedelta(minutes=2)) == 2  # the beat job
                wait_for(
                    lambda: not OutboxEmail.objects.exclude(status=EmailStatus.SENT).exists(),
                    "the worker did not send the emails",
                    worker_log,
                )
                assert requeue_outbox_emails(now=timezone.now() + timedelta(minutes=2)) == 0  # nothing left
                reconcile_daily_summaries_task.delay()  # the nightly job
                wait_for(lambda: DailySummary.objects.exists(), "the worker did not reconcile the rollups", worker_log)
        finally:
            stop(worker)
            stop(server)
            if redis_server.process:
                redis_server.stop()

    # Each email delivered once; a second send of any of them does nothing (the claim).
    assert sorted(recipients for recipients, _ in delivered) == [["known@example.org"], ["new@example.org"]]
    assert [(e.status, e.attempts) for e in OutboxEmail.objects.all()] == [(EmailStatus.SENT, 1)] * 2
    assert [send_outbox_email(email_id=e.pk) for e in OutboxEmail.objects.all()] == [None, None]

    # The links work (minted when the emails were sent).
    bodies = {recipients[0]: _body(raw) for recipients, raw in delivered}
    token = re.search(r"token=(\S+)", bodies["new@example.org"]).group(1)
    client = APIClient()
    assert client.post(f"{API}/auth/verify-email/", {"token": token}).status_code == 200
    uid = re.search(r"uid=([\w-]+)", bodies["known@example.org"]).group(1)
    reset = re.search(r"reset-password\?uid=[\w-]+&token=([\w-]+)", bodies["known@example.org"]).group(1)
    new_password = "a-New-passphrase-for-later-3"
    body = {"uid": uid, "token": reset, "new_password": new_password, "new_password_confirm": new_password}
    assert client.post(f"{API}/auth/password/reset/confirm/", body).status_code == 200
    assert User.objects.get(email="known@example.org").check_password(new_password)

    # The reading written during the outage is rolled up.
    new_user = User.objects.get(email="new@example.org")
    assert list(DailySummary.objects.filter(user=new_user).values_list("local_date", "count", "sum")) == [
        (date(2026, 11, 3), 1, 61)
    ]
    assert stale_daily_summaries() == []

    # The throttles fell back to local memory, and said so once for the whole outage.
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert log.count("throttle_cache_unavailable") == 1, log[-4000:]


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_readings_are_stored_and_every_rollup_is_right_once_it_is_back(not_eager, tmp_path: Path):
    """The broker stopped, the cache up: readings posted then answer 201. The broker back: the next
    reading of a day written in the outage rolls that day up with both readings (a failed publish
    leaves no pending mark to block it), and the nightly reconciliation rolls up a day of last
    month written only during the outage."""
    user = UserFactory()
    token = issue_tokens(user)["access"]
    cache_server, broker_server = RedisServer(tmp_path / "cache.log"), RedisServer(tmp_path / "broker.log")
    served = {"SERVED_CACHE_URL": cache_server.url, "SERVED_BROKER_URL": broker_server.url, "ROLLUP_DELAY_SECONDS": "0"}
    server = worker = None
    worker_log = tmp_path / "worker.log"

    def post(value: float, at: str) -> None:
        reading = {"metric_type": "heart_rate", "value": value, "recorded_at": at}
        status, body = http("POST", f"{url}{API}/health-metrics/", reading, token=token)
        assert status == 201, body

    def rollup(day: date) -> tuple[int, float] | None:
        row = DailySummary.objects.filter(user=user, metric_type__code="heart_rate", local_date=day)
        return row.values_list("count", "sum").first()

    try:
        cache_server.start()
        broker_server.start()
        server, url = start_app_server(tmp_path / "server.log", env=served)

        broker_server.stop()
        post(60, "2026-11-03T08:00:00Z")
        post(75, "2026-10-01T08:00:00Z")  # a late reading for last month, and the only one that day
        assert Reading.objects.filter(user=user).count() == 2

        broker_server.start()
        worker = start_worker(worker_log, queues=("default",), settings_module="tests.served_settings", env=served)
        post(70, "2026-11-03T09:00:00Z")
        wait_for(
            lambda: rollup(date(2026, 11, 3)) == (2, 130), "the day written in the outage was not rolled up", worker_log
        )
        assert rollup(date(2026, 10, 1)) is None  # no write since the outage: the nightly job's
        assert stale_daily_summaries() != []

        with broker_at(broker_server.url):
            reconcile_daily_summaries_task.delay()  # the nightly job
        wait_for(
            lambda: rollup(date(2026, 10, 1)) == (1, 75), "the reconciliation did not roll up last month", worker_log
        )
    finally:
        stop(worker)
        stop(server)
        for redis_server in (cache_server, broker_server):
            if redis_server.process:
                redis_server.stop()

    assert stale_daily_summaries() == []
    assert rollup(date(2026, 11, 3)) == (2, 130)
