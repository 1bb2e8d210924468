from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from .services import clear_pending_rollups, recompute_daily_summaries, reconcile_daily_summaries


@shared_task
def recompute_daily_summaries_task(user_id: str, days: list[list]) -> int:
    """Rebuild the rollups of [type id, ISO day] pairs. Idempotent: derived from the readings alone."""
    pairs = [(int(type_id), date.fromisoformat(day)) for type_id, day in days]
    clear_pending_rollups(user_id=user_id, days=pairs)  # before reading: later writes queue anew
    return recompute_daily_summaries(user_id=user_id, days=pairs)


@shared_task
def reconcile_daily_summaries_task(days: int = 2) -> int:
    """Nightly: recompute every rollup of the last `days` local days (late arrivals, lost tasks)."""
    return reconcile_daily_summaries(since=timezone.now().date() - timedelta(days=days))
