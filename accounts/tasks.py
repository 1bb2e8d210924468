from __future__ import annotations

from celery import shared_task

from .services import flush_expired_tokens


@shared_task
def flush_expired_tokens_task() -> int:
    """Delete expired refresh-token records. Idempotent: a second run finds nothing to delete."""
    return flush_expired_tokens()
