"""The Celery app's reliability settings, and a real worker running a task through Redis."""

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from accounts.models import AuthSession, IssuedRefreshToken
from accounts.tasks import flush_expired_tokens_task
from accounts.tests.factories import UserFactory
from config.celery import app

FLUSH_TASK = "accounts.tasks.flush_expired_tokens_task"


def test_tasks_are_acknowledged_late_one_at_a_time():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_tasks_have_soft_and_hard_time_limits():
    assert app.conf.task_soft_time_limit == 60
    assert app.conf.task_time_limit == 90


def test_redis_redelivers_only_well_after_the_hard_time_limit():
    visibility_timeout = app.conf.broker_transport_options["visibility_timeout"]

    assert visibility_timeout > app.conf.task_time_limit
    assert visibility_timeout == 3600


def test_app_declares_the_four_queues_and_defaults_to_default():
    assert [queue.name for queue in app.conf.task_queues] == ["ingest", "default", "notifications", "integrations"]
    assert app.conf.task_default_queue == "default"


def test_tasks_are_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_beat_schedule_flushes_expired_tokens():
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}

    assert schedule[FLUSH_TASK] == timedelta(hours=6)
    assert FLUSH_TASK in app.tasks


def test_flush_task_runs_on_the_default_queue():
    route = app.amqp.router.route({}, FLUSH_TASK)

    assert route["queue"].name == "default"


def _token(user, *, jti: str, expires_in: timedelta) -> IssuedRefreshToken:
    """A session of one refresh token that expires (or expired) `expires_in` from now."""
    now = timezone.now()
    session = AuthSession.objects.create(user=user, created_at=now - timedelta(days=1), expires_at=now + expires_in)
    return IssuedRefreshToken.objects.create(
        session=session,
        jti=jti,
        token_hash="0" * 64,
        created_at=now - timedelta(days=1),
        expires_at=now + expires_in,
    )


@pytest.mark.django_db(transaction=True)
def test_real_worker_flushes_expired_tokens_through_redis(not_eager, logging_restored):
    assert settings.CELERY_BROKER_URL.startswith("redis://127.0.0.1:")
    assert app.conf.broker_url == settings.CELERY_BROKER_URL  # this process's own Redis database
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("default")  # acks_late leaves messages from aborted runs

    user = UserFactory()
    expired = _token(user, jti="expired-jti", expires_in=-timedelta(minutes=1))
    expired_ended = _token(user, jti="expired-ended-jti", expires_in=-timedelta(hours=1))
    AuthSession.objects.filter(pk=expired_ended.session_id).update(ended_at=timezone.now() - timedelta(days=1))
    live = _token(user, jti="live-jti", expires_in=timedelta(days=1))

    with start_worker(app, pool="solo", perform_ping_check=False, queues=["default"]):
        flush_expired_tokens_task.delay()
        deadline = time.monotonic() + 20
        while IssuedRefreshToken.objects.filter(pk__in=[expired.pk, expired_ended.pk]).exists():
            assert time.monotonic() < deadline, "the worker did not run the task within 20 s"
            time.sleep(0.1)

    assert list(IssuedRefreshToken.objects.values_list("pk", flat=True)) == [live.pk]
    assert list(AuthSession.objects.values_list("pk", flat=True)) == [live.session_id]


@pytest.mark.django_db
def test_flush_task_is_idempotent():
    user = UserFactory()
    _token(user, jti="gone-1", expires_in=-timedelta(seconds=1))
    _token(user, jti="gone-2", expires_in=-timedelta(days=30))
    live = _token(user, jti="stays", expires_in=timedelta(minutes=5))

    assert app.conf.task_always_eager is True
    assert flush_expired_tokens_task.delay().get() == 2
    assert flush_expired_tokens_task.delay().get() == 0
    assert list(IssuedRefreshToken.objects.values_list("pk", flat=True)) == [live.pk]


WORKER_LOGGING_PROBE = """
import logging, django
django.setup()
from config.celery import app
app.log.setup(loglevel="INFO")  # what `celery worker` does at start (celery.apps.worker.Worker.setup_logging)
logging.getLogger("probe").warning("worker log line")
"""


def test_worker_logs_stay_json():
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PYTEST_XDIST_WORKER": os.environ.get("PYTEST_XDIST_WORKER", "gw0"),
    }

    result = subprocess.run(
        [sys.executable, "-c", WORKER_LOGGING_PROBE],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "worker log line" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("{"), f"not a JSON line: {lines[0]!r}"
    assert json.loads(lines[0])["event"] == "worker log line"
