from __future__ import annotations

from celery import shared_task

from .services import flush_expired_tokens, purge_outbox_emails, requeue_outbox_emails, send_outbox_email
from .sync import purge_old_changes


@shared_task
def flush_expired_tokens_task() -> int:
    """Delete expired refresh-token records, and outbox emails finished long ago. Idempotent: a second run
    finds nothing to delete."""
    purge_outbox_emails()
    return flush_expired_tokens()


@shared_task
def send_outbox_email_task(email_id: str) -> str | None:
    """Send one outbox email. Idempotent: the row is claimed by a conditional update, so it is sent once."""
    return send_outbox_email(email_id=email_id)


@shared_task
def requeue_outbox_emails_task() -> int:
    """Every minute: hand on emails the broker never took, or whose send failed or was abandoned.
    Idempotent: each send claims its row first."""
    return requeue_outbox_emails()


@shared_task
def purge_old_changes_task() -> int:
    """Daily: delete sync change rows (tombstones too) older than SYNC_CHANGE_RETENTION_DAYS. Idempotent."""
    return purge_old_changes()
