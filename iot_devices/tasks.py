from __future__ import annotations

from celery import shared_task

from .services import check_device_health, requeue_stranded_batches, run_batch


@shared_task(acks_late=True)
def process_batch_task(batch_id: str) -> str | None:
    """Process one ingest batch (queue `ingest`). Idempotent: claimed by a conditional update.

    A crash is recorded on the batch, which the sweeper retries up to INGEST_MAX_ATTEMPTS times.
    """
    batch = run_batch(batch_id=batch_id)
    return batch.status if batch else None


@shared_task
def requeue_stranded_batches_task() -> int:
    """Beat: re-enqueue batches left received (broker down) or stuck processing (worker died)."""
    return requeue_stranded_batches()


@shared_task
def check_device_health_task() -> dict[str, int]:
    """Beat: open or resolve device alerts. Idempotent: one alert per episode."""
    return check_device_health()
