"""Never lost: batches stranded by a dead worker or a dead broker are re-enqueued and stored exactly once.

Both tests use REAL Celery workers, started as separate `celery worker` processes on this test
process's own PostgreSQL test database and Redis database (config/settings/test.py derives the Redis
db number from PYTEST_XDIST_WORKER, which the workers inherit), consuming the `ingest` queue.

* A worker is killed with SIGKILL while it is in the middle of a batch (its readings inserted but
  not committed). The batch is left `processing`; once it is older than INGEST_STALE_SECONDS the
  sweeper (`requeue_stranded_batches`, what the beat job runs) re-enqueues it and a second worker
  stores every reading once.
* A batch uploaded while the broker is unreachable is still accepted (202, stored `received`); once
  the broker is back the sweeper enqueues it and a worker stores every reading once.
"""

from __future__ import annotations

import logging
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.db.models import Count
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from conftest import bearer
from health_metrics.models import Reading
from iot_devices.models import Device, IngestBatch
from iot_devices.services import process_batch, requeue_stranded_batches
from iot_devices.tasks import process_batch_task
from tests.processes import (
    DEADLINE,
    Records,
    broker_unreachable,
    forget_unacked,
    purge,
    queue_length,
    start_worker,
    stop,
    wait_for,
)

STALE_SECONDS = 2


def _start_worker(log: Path):  # noqa: ANN202
    """A real worker on the `ingest` queue, on this test's database and this process's Redis database."""
    return start_worker(log, queues=("ingest",), env={"INGEST_STALE_SECONDS": str(STALE_SECONDS)})


def _register_device(owner) -> tuple[APIClient, str]:  # noqa: ANN001
    registered = bearer(APIClient(), owner).post("/api/v1/iot-devices/", {"name": "Watch"}, format="json")
    assert registered.status_code == 201, registered.content
    client = APIClient()
    client.credentials(HTTP_X_DEVICE_KEY=registered.json()["api_key"])
    return client, registered.json()["id"]


def _heart_rates(count: int) -> list[dict]:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    return [
        {
            "metric_type": "heart_rate",
            "value": 55 + n % 50,
            "recorded_at": (start + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
        }
        for n in range(count)
    ]


def _assert_stored_exactly_once(device_pk: str, readings: list[dict]) -> None:
    stored = Reading.objects.filter(data_source__device=device_pk)
    assert stored.count() == len(readings)
    repeated = stored.values("metric_type_id", "recorded_at").annotate(n=Count("id")).filter(n__gt=1)
    assert list(repeated) == []
    expected = {datetime.fromisoformat(r["recorded_at"]) for r in readings}
    assert set(stored.values_list("recorded_at", flat=True)) == expected


# --- a worker killed mid-batch ---------------------------------------------------------------------


def _backend_blocked_on(lock_holder_pid: int) -> tuple[int, str] | None:
    """The PostgreSQL backend (of the worker) waiting for the lock this test holds, and its query, if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND %s = ANY(pg_blocking_pids(pid))",
            [lock_holder_pid],
        )
        return cursor.fetchone()


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


@pytest.mark.django_db(transaction=True)
def test_a_batch_survives_a_worker_killed_mid_batch(not_eager, settings, tmp_path):
    """SIGKILL a real worker mid-batch; the sweeper hands the batch to another worker; every reading once.

    To kill the worker *deterministically* in the middle of the batch (not before it starts, not after
    it commits), the test holds a `FOR NO KEY UPDATE` row lock on the device from a separate database
    connection. The worker claims the batch (`processing`, committed), inserts all 10,000 readings in
    its transaction, then blocks on its `UPDATE device SET last_seen_at` just before committing. The
    test sees that backend waiting on its lock, and only then kills the worker process.
    """
    settings.INGEST_STALE_SECONDS = STALE_SECONDS  # what this process's sweeper calls stale
    purge("ingest", "default")
    owner = UserFactory()
    device, device_pk = _register_device(owner)
    readings = _heart_rates(10_000)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = second = None
    lock = None
    try:
        response = device.post(
            "/api/v1/iot-devices/ingest/", {"batch_id": "kill-me", "readings": readings}, format="json"
        )
        assert response.status_code == 202, response.content
        batch_pk = response.json()["id"]
        assert IngestBatch.objects.get(pk=batch_pk).status == "received"
        assert queue_length("ingest") == 1  # enqueued on commit, waiting for a worker

        db = connection.settings_dict
        lock = psycopg.connect(
            dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None, host=db["HOST"], port=db["PORT"]
        )
        lock.execute(f'SELECT 1 FROM "{Device._meta.db_table}" WHERE id = %s FOR NO KEY UPDATE', [device_pk])
        lock_pid = lock.info.backend_pid

        first = _start_worker(first_log)
        worker_backend, blocked_query = wait_for(
            lambda: _backend_blocked_on(lock_pid), "the worker did not reach the end of the batch", first_log
        )
        assert blocked_query.startswith(f'UPDATE "{Device._meta.db_table}" SET "last_seen_at"'), blocked_query
        with connection.cursor() as cursor:  # its 10,000 inserts are in the dead transaction, not yet visible
            cursor.execute("SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s", [worker_backend])
            assert cursor.fetchone() == (True,)
        batch = IngestBatch.objects.get(pk=batch_pk)
        assert (batch.status, batch.attempts) == ("processing", 1)

        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=DEADLINE) == -signal.SIGKILL
        lock.rollback()  # the orphaned backend resumes, finds its client gone and rolls back
        lock.close()
        lock = None
        wait_for(lambda: not _backend_alive(worker_backend), "the killed worker's database session did not end")

        batch = IngestBatch.objects.get(pk=batch_pk)
        assert (batch.status, batch.attempts, batch.finished_at) == ("processing", 1, None)
        assert Reading.objects.filter(data_source__device=device_pk).count() == 0  # its transaction died with it
        assert queue_length("ingest") == 0  # the message is unacknowledged, not back in the queue

        # Not stale yet: the sweeper leaves a batch that may still be running alone.
        requeue_stranded_batches(older_than=timedelta(0))
        assert queue_length("ingest") == 0
        assert IngestBatch.objects.get(pk=batch_pk).status == "processing"

        wait_for(
            lambda: (
                IngestBatch.objects.get(pk=batch_pk).started_at
                < datetime.now(UTC) - timedelta(seconds=STALE_SECONDS + 0.5)
            ),
            "the batch did not become stale",
        )
        second = _start_worker(second_log)
        assert requeue_stranded_batches(older_than=timedelta(0)) == 1  # what the beat job runs
        wait_for(
            lambda: IngestBatch.objects.get(pk=batch_pk).status not in ("received", "processing"),
            "the second worker did not process the batch",
            second_log,
        )
    finally:
        if lock is not None:
            lock.close()
        if first is not None and first.poll() is None:
            first.kill()
            first.wait(timeout=DEADLINE)
        stop(second)
        purge("ingest", "default")  # the rollups task went to `default`, which no worker here consumes
        forget_unacked()

    batch = IngestBatch.objects.get(pk=batch_pk)
    assert (batch.status, batch.attempts, batch.accepted, batch.duplicates, batch.rejected) == ("done", 2, 10_000, 0, 0)
    _assert_stored_exactly_once(device_pk, readings)
    # Redis may yet redeliver the killed worker's message (acks_late, reject_on_worker_lost): the
    # claim makes that run a no-op.
    assert process_batch(batch_id=batch_pk) is None
    assert IngestBatch.objects.get(pk=batch_pk).attempts == 2
    assert Reading.objects.filter(data_source__device=device_pk).count() == 10_000


# --- an upload while the broker is down ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_upload_while_the_broker_is_down_is_processed_later(not_eager, tmp_path):
    """Upload with the broker unreachable: 202, stored `received`; the sweeper enqueues it once the broker is back.

    The outage is simulated in this process only (see `_broker_unreachable`): the shared Redis server
    keeps running for other test runs. The test checks the outage is real: a publish raises, the
    upload's on-commit publish fails and is logged (robust on_commit swallows it), and nothing reaches
    the `ingest` queue.
    """
    purge("ingest", "default")
    owner = UserFactory()
    device, device_pk = _register_device(owner)
    readings = _heart_rates(1_000)
    log = tmp_path / "worker.log"
    worker = None
    on_commit_errors = Records()
    db_logger = logging.getLogger("django.db.backends")
    db_logger.addHandler(on_commit_errors)
    try:
        with broker_unreachable():
            with pytest.raises(OperationalError):
                process_batch_task.delay("00000000-0000-0000-0000-000000000000")  # publishing really fails

            response = device.post(
                "/api/v1/iot-devices/ingest/", {"batch_id": "offline", "readings": readings}, format="json"
            )
        db_logger.removeHandler(on_commit_errors)

        assert response.status_code == 202, response.content
        assert response.json()["status"] == "received"
        batch_pk = response.json()["id"]
        batch = IngestBatch.objects.get(pk=batch_pk)
        assert (batch.status, batch.attempts, batch.reading_count) == ("received", 0, 1_000)
        failures = [r for r in on_commit_errors.records if "on_commit" in r.getMessage()]
        assert len(failures) == 1, [r.getMessage() for r in on_commit_errors.records]
        assert failures[0].exc_info is not None
        assert isinstance(failures[0].exc_info[1], OperationalError)
        assert queue_length("ingest") == 0  # broker back: nothing was published for the batch

        worker = _start_worker(log)
        wait_for(lambda: "ready" in log.read_text(errors="replace"), "the worker did not start", log)
        assert IngestBatch.objects.get(pk=batch_pk).status == "received"  # nothing to consume yet

        assert requeue_stranded_batches(older_than=timedelta(0)) == 1  # what the beat job runs
        wait_for(
            lambda: IngestBatch.objects.get(pk=batch_pk).status not in ("received", "processing"),
            "the worker did not process the batch",
            log,
        )
    finally:
        db_logger.removeHandler(on_commit_errors)
        stop(worker)
        purge("ingest", "default")

    batch = IngestBatch.objects.get(pk=batch_pk)
    assert (batch.status, batch.attempts, batch.accepted, batch.duplicates, batch.rejected) == ("done", 1, 1_000, 0, 0)
    _assert_stored_exactly_once(device_pk, readings)
    assert requeue_stranded_batches(older_than=timedelta(0)) == 0  # nothing stranded any more
