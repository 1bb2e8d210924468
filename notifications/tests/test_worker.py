"""Notifications through REAL Celery workers and a real SMTP peer: told once, even when retried or killed.

The workers are separate `celery worker` processes (tests/processes.py, `tests.served_settings`) on this
test process's PostgreSQL test database and Redis database; they send email over SMTP to an aiosmtpd
server on loopback that this process runs (SERVED_SMTP_PORT). Every test is `django_db(transaction=True)`
(STACK.md pitfall 1): a worker sees only what the test committed.

* A critical blood-glucose reading posted through the API reaches the patient's and the clinician's
  inbox, and each of them by email, with a subject that carries no value.
* A delivery enqueued several times (a retried notify, a duplicate enqueue, a redelivered message) is sent
  once: the claim (queued -> sending, a conditional update) lets one run send it.
* A worker SIGKILLed in the middle of an SMTP conversation: the sweeper hands the stale claim on and a
  second worker sends the email once.

Waits poll with `wait_for` (they bound a broken run; they are not what is asserted).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from conftest import bearer
from notifications import kinds
from notifications.models import Delivery, Notification
from notifications.services import deliver, notify, requeue_due_deliveries
from notifications.tasks import deliver_task
from tests.processes import (
    DEADLINE,
    forget_unacked,
    free_port,
    purge,
    queue_length,
    smtp_peer,
    start_worker,
    stop,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

STALE_SECONDS = 2  # NOTIFICATION_STALE_CLAIM_SECONDS for the test and its workers
QUEUES = ("default", "notifications")  # the rollups and anomaly checks, then the deliveries


def _start_worker(log: Path, smtp_port: int):  # noqa: ANN202
    return start_worker(
        log,
        queues=QUEUES,
        settings_module="tests.served_settings",
        env={"SERVED_SMTP_PORT": str(smtp_port), "NOTIFICATION_STALE_CLAIM_SECONDS": str(STALE_SECONDS)},
    )


def _succeeded(log: Path, task: str) -> int:
    """How many runs of `task` the worker logged as finished (Celery's `Task ... succeeded` line)."""
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text(errors="replace").splitlines() if task in line and "succeeded" in line)


def _subjects(messages: list[tuple[list[str], str]]) -> dict[str, list[str]]:
    """Recipient address -> the subjects of the messages the peer accepted for it."""
    told: dict[str, list[str]] = {}
    for rcpt_tos, raw in messages:
        for address in rcpt_tos:
            told.setdefault(address, []).append(str(_parse(raw)["Subject"]))
    return told


def _parse(raw: str) -> email.message.EmailMessage:
    return email.message_from_string(raw, policy=email.policy.default)  # headers unfolded


# --- a. a critical reading, through the API, to two inboxes and two mailboxes ------------------------


def test_a_critical_glucose_reading_reaches_the_patient_and_the_clinician_through_a_real_worker(
    not_eager, settings, tmp_path
):
    settings.ROLLUP_DELAY_SECONDS = 0  # the rollups task is published from this process, after the POST commits
    purge(*QUEUES)
    patient = UserFactory(email="patient.a@example.org")
    clinician = ClinicianFactory(email="dr.a@example.org")
    CareTeamGrantFactory(patient=patient, clinician=clinician, scopes=["metrics"])
    bystander = ClinicianFactory(email="dr.bystander@example.org")
    CareTeamGrantFactory(patient=patient, clinician=bystander, scopes=["appointments"])
    log = tmp_path / "worker.log"
    worker = None
    recorded_at = (timezone.now() - timedelta(minutes=5)).replace(microsecond=0)
    with smtp_peer() as (smtp_port, messages):
        try:
            response = bearer(APIClient(), patient).post(
                "/api/v1/health-metrics/",
                {"metric_type": "blood_glucose", "value": 312, "recorded_at": recorded_at.isoformat()},
                format="json",
            )
            assert response.status_code == 201, response.content
            assert not Notification.objects.exists()  # nothing runs in this process

            worker = _start_worker(log, smtp_port)
            wait_for(lambda: len(messages) >= 2, "two emails did not reach the SMTP peer", log)
            wait_for(
                lambda: (
                    Delivery.objects.filter(channel="email", status="sent").count() == 2
                    and queue_length("notifications") == 0
                ),
                "the email deliveries were not recorded sent",
                log,
            )
        finally:
            stop(worker)
            purge(*QUEUES)
        accepted = list(messages)

    told = Notification.objects.filter(kind="health_alert_critical")
    assert {n.recipient_id for n in told} == {patient.pk, clinician.pk}
    assert all(n.patient_id == patient.pk and n.severity == "critical" for n in told)

    for person in (patient, clinician):  # each one's inbox, through the API, as that person
        inbox = bearer(APIClient(), person).get("/api/v1/notifications/")
        assert inbox.status_code == 200, inbox.content
        (item,) = inbox.json()["results"]
        assert (item["kind"], item["severity"], item["is_read"]) == ("health_alert_critical", "critical", False)
        assert item["title"] == "Critical: Blood glucose"
    bystanders_inbox = bearer(APIClient(), bystander).get("/api/v1/notifications/")
    assert bystanders_inbox.json()["results"] == []  # a grant without the metrics scope tells nobody

    neutral = kinds.get("health_alert_critical").neutral
    assert _subjects(accepted) == {patient.email: [neutral], clinician.email: [neutral]}
    for _, raw in accepted:  # no value, unit or type in the email (its link holds a random id: digits unchecked)
        message = _parse(raw)
        assert "312" not in message["Subject"]
        text = f"{message['Subject']}\n{message.get_body(('plain',)).get_content()}".lower()
        assert "mg/dl" not in text
        assert "glucose" not in text


# --- b. enqueued again, redelivered, notified again: sent once ---------------------------------------


def test_a_delivery_enqueued_again_or_redelivered_is_sent_once(not_eager, tmp_path):
    """The same event notified twice (its dedupe key), each email delivery's task published twice more, and
    once more under one task id twice (what a broker redelivering a message hands a worker): one email each."""
    purge(*QUEUES)
    patient = UserFactory(email="twice.patient@example.org")
    clinician = ClinicianFactory(email="dr.twice@example.org")
    CareTeamGrantFactory(patient=patient, clinician=clinician, scopes=["metrics"])
    payload = {"metric": "Blood glucose", "message": "Blood glucose 312 mg/dL, above 250.", "alert_id": "a1"}
    log = tmp_path / "worker.log"
    worker = None
    with smtp_peer() as (smtp_port, messages):
        try:
            for _ in range(2):  # an event retried by the task that raised it: the second notify writes nothing
                with transaction.atomic():
                    told = notify(
                        "health_alert_critical",
                        patient=patient,
                        scope="metrics",
                        payload=payload,
                        dedupe_key="health_alert:a1:opened:critical",
                    )
            assert told == []
            emails = list(Delivery.objects.filter(channel="email").values_list("pk", flat=True))
            assert len(emails) == 2
            published = queue_length("notifications")  # notify's own enqueue: one task per queued delivery
            assert published == Delivery.objects.filter(status="queued").count() >= len(emails)

            for delivery_id in emails:
                deliver_task.delay(delivery_id)  # a caller's retry
                deliver_task.delay(delivery_id)
                redelivered = f"redelivered-{delivery_id}"
                deliver_task.apply_async((delivery_id,), task_id=redelivered)  # the same message, twice
                deliver_task.apply_async((delivery_id,), task_id=redelivered)
            published += 4 * len(emails)
            assert queue_length("notifications") == published

            worker = _start_worker(log, smtp_port)
            wait_for(
                lambda: _succeeded(log, "deliver_task") >= published,
                f"the worker did not run all {published} delivery tasks",
                log,
            )
            assert queue_length("notifications") == 0
        finally:
            stop(worker)
            purge(*QUEUES)
        accepted = list(messages)

    assert _succeeded(log, "deliver_task") == published
    neutral = kinds.get("health_alert_critical").neutral
    assert _subjects(accepted) == {patient.email: [neutral], clinician.email: [neutral]}
    assert list(Delivery.objects.filter(channel="email").values_list("status", "attempts")) == [("sent", 1)] * 2
    assert Notification.objects.count() == 2


# --- c. a worker killed mid-delivery ------------------------------------------------------------------


class _StallingHandler:
    """An SMTP peer that holds its first RCPT answer until released: the message is not yet accepted, nor
    even sent (DATA has not begun). Waiting is async, so the server goes on serving other connections."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []
        self.stalled = threading.Event()  # the first RCPT is being held
        self.release = threading.Event()
        self.ended = threading.Event()  # the held RCPT is over: released, or its client gone

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list) -> str:  # noqa: N802
        if not self.stalled.is_set():
            self.stalled.set()
            try:
                while not self.release.is_set():
                    await asyncio.sleep(0.02)
            finally:  # released, or cancelled by aiosmtpd when the client's connection is lost
                self.ended.set()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode(errors="replace")))
        return "250 OK"


def test_a_worker_killed_mid_delivery_still_sends_once(not_eager, settings, tmp_path):
    """SIGKILL a real worker while its SMTP peer holds the RCPT answer; the sweeper hands the stale claim on;
    a second worker sends the email; the peer accepted exactly one message; the delivery is sent, attempts 2.

    Why once: the killed worker's claim (`sending`) stops anything else sending it until the claim is older
    than NOTIFICATION_STALE_CLAIM_SECONDS; the peer had not accepted the message when the worker died.

    What stays at-least-once (and this test does not pretend otherwise): a worker killed after the peer has
    answered 250 to DATA (it has accepted the message) but before the row is updated to `sent` leaves a
    claim that looks exactly like this one; the sweeper hands it on and the recipient gets the email twice.
    No SMTP server takes part in a transaction with our database, so that window (one UPDATE long) cannot
    close. The same holds for a worker still inside its send when its claim goes stale (a peer that stalls
    longer than NOTIFICATION_STALE_CLAIM_SECONDS): EMAIL_TIMEOUT (20 s) and the task time limits (60 s soft,
    90 s hard, enforced by the prefork pool) keep a send well inside the 300 s default.
    """
    settings.NOTIFICATION_STALE_CLAIM_SECONDS = STALE_SECONDS  # what this process's sweeper calls stale
    purge(*QUEUES)
    person = UserFactory(email="killed.worker@example.org")
    handler = _StallingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = second = None
    try:
        with transaction.atomic():
            (notification,) = notify("export_failed", recipients=[person], payload={"reason": "The export failed."})
        delivery = Delivery.objects.get(notification=notification, channel="email")
        assert queue_length("notifications") == 1

        first = _start_worker(first_log, controller.port)
        wait_for(handler.stalled.is_set, "the worker did not reach the SMTP peer", first_log)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("sending", 1)  # claimed, mid-conversation

        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=DEADLINE) == -signal.SIGKILL
        handler.release.set()
        wait_for(handler.ended.is_set, "the peer did not end the held conversation")
        assert handler.messages == []  # the client died before DATA: nothing was accepted
        assert queue_length("notifications") == 0  # its message is unacknowledged, not back in the queue

        # Not stale yet: the sweeper leaves a delivery that may still be sending alone.
        assert requeue_due_deliveries() == 0
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("sending", 1)

        wait_for(
            lambda: delivery.claimed_at < timezone.now() - timedelta(seconds=STALE_SECONDS + 0.5),
            "the claim did not become stale",
        )
        second = _start_worker(second_log, controller.port)
        assert requeue_due_deliveries() == 1  # what the beat job runs every minute
        wait_for(
            lambda: Delivery.objects.get(pk=delivery.pk).status not in ("queued", "sending"),
            "the second worker did not send the delivery",
            second_log,
        )
    finally:
        if first is not None and first.poll() is None:
            first.kill()
            first.wait(timeout=DEADLINE)
        stop(second)
        handler.release.set()
        controller.stop()
        purge(*QUEUES)
        forget_unacked()  # the killed worker's message, which a later run's worker would restore

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.reason) == ("sent", 2, "")
    assert _subjects(handler.messages) == {person.email: [kinds.get("export_failed").neutral]}
    # Redis may yet redeliver the killed worker's message (acks_late, reject_on_worker_lost): a no-op.
    assert deliver(delivery_id=delivery.pk) is None
    assert Delivery.objects.get(pk=delivery.pk).attempts == 2


def test_the_stale_claim_time_is_a_setting(settings):
    """The sweeper reads NOTIFICATION_STALE_CLAIM_SECONDS each time it runs (default 300 s). Eager mode here."""
    assert settings.NOTIFICATION_STALE_CLAIM_SECONDS == 300
    person = UserFactory()
    with transaction.atomic():
        (notification,) = notify("export_failed", recipients=[person], payload={"reason": "x"})
    delivery = Delivery.objects.get(notification=notification, channel="email")
    ten_seconds_ago = timezone.now() - timedelta(seconds=10)
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=1, claimed_at=ten_seconds_ago)

    assert requeue_due_deliveries() == 0
    assert Delivery.objects.get(pk=delivery.pk).status == "sending"

    settings.NOTIFICATION_STALE_CLAIM_SECONDS = 5
    assert requeue_due_deliveries() == 1  # handed on, and (eager) sent at once
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
