"""Thin beat tasks: each calls one job of appointments/reminders.py, which says how it stays idempotent."""

from __future__ import annotations

from celery import shared_task

from .reminders import expire_requests, mark_no_shows, send_due_reminders


@shared_task
def send_due_appointment_reminders_task() -> int:
    """Beat: send due reminders. Idempotent: each (appointment, offset) row is inserted once (a unique constraint)."""
    return send_due_reminders()


@shared_task
def expire_appointment_requests_task() -> int:
    """Beat: cancel requests left unconfirmed too close to their start. Idempotent: a compare-and-swap per row."""
    return expire_requests()


@shared_task
def mark_appointment_no_shows_task() -> int:
    """Beat: confirmed appointments not checked in after the grace period become no-shows (compare-and-swap)."""
    return mark_no_shows()
