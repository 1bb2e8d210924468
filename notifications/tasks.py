from __future__ import annotations

from celery import shared_task

from .digests import send_due_digests
from .escalation import escalate_due
from .services import deliver, purge_idle_push_devices, requeue_due_deliveries
from .webhooks import requeue_due_webhook_deliveries, send_webhook_delivery


@shared_task(acks_late=True)
def deliver_task(delivery_id: int) -> str | None:
    """Send one delivery. Idempotent: the row is claimed by a conditional update, so it is sent once."""
    return deliver(delivery_id=delivery_id)


@shared_task
def requeue_due_deliveries_task() -> int:
    """Every minute: retries whose time has come, deliveries held for quiet hours, ones the broker never took."""
    return requeue_due_deliveries()


@shared_task
def purge_idle_push_devices_task() -> int:
    """Daily: forget push tokens unused for PUSH_DEVICE_IDLE_DAYS (270). Idempotent."""
    return purge_idle_push_devices()


@shared_task
def escalate_due_task() -> int:
    """Every minute: the next step of each critical alert left unacknowledged past its organization's time."""
    return escalate_due()


@shared_task
def send_due_digests_task() -> int:
    """Every five minutes: the daily digests whose local hour has come, each claimed and sent once."""
    return send_due_digests()


@shared_task(acks_late=True)
def send_webhook_delivery_task(delivery_id: int | str) -> str | None:
    """Try one webhook delivery. Idempotent: the row is claimed by a conditional update, so each attempt is made
    once; a row deleted since enqueue (its subscription was deleted) is nothing to do."""
    return send_webhook_delivery(delivery_id=int(delivery_id))


@shared_task
def requeue_due_webhook_deliveries_task() -> int:
    """Every minute: webhook retries whose time has come, ones the broker never took, claims of dead workers."""
    return requeue_due_webhook_deliveries()
