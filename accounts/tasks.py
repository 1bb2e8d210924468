from __future__ import annotations

from celery import shared_task

from .models import User
from .services import flush_expired_tokens, send_password_reset_email, send_verification_email


@shared_task
def flush_expired_tokens_task() -> int:
    """Delete expired refresh-token records. Idempotent: a second run finds nothing to delete."""
    return flush_expired_tokens()


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_verification_email_task(user_id: str) -> None:
    """Email the verification link. Sending twice only sends a second valid link."""
    user = User.objects.filter(pk=user_id, email_verified_at__isnull=True).first()
    if user is not None:  # deleted or verified since: nothing to do
        send_verification_email(user=user)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_password_reset_email_task(user_id: str) -> None:
    """Email a reset link. Sending twice only sends a second valid link."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is not None:
        send_password_reset_email(user=user)
