from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from accounts.models import User

from .alerts import check_anomalies, sweep_anomalies
from .scoring import compute_health_score, due_health_scores
from .services import clear_pending_rollups, recompute_daily_summaries, reconcile_daily_summaries


@shared_task
def recompute_daily_summaries_task(user_id: str, days: list[list]) -> int:
    """Rebuild the rollups of [type id, ISO day] pairs. Idempotent: derived from the readings alone."""
    pairs = [(int(type_id), date.fromisoformat(day)) for type_id, day in days]
    clear_pending_rollups(user_id=user_id, days=pairs)  # before reading: later writes queue anew
    written = recompute_daily_summaries(user_id=user_id, days=pairs)
    check_anomalies_task.delay(user_id, days)  # after the rollups, which the baseline checks read
    return written


@shared_task
def check_anomalies_task(user_id: str, days: list[list]) -> dict[str, int]:
    """Open, escalate or resolve a patient's alerts for [type id, ISO day] pairs. Idempotent."""
    pairs = [(int(type_id), date.fromisoformat(day)) for type_id, day in days]
    return check_anomalies(user_id=user_id, days=pairs)


@shared_task
def sweep_anomalies_task(hours: int = 2) -> dict[str, int]:
    """Periodic safety net: re-check what changed in the last `hours` (a lost task, a worker restart)."""
    return sweep_anomalies(since=timezone.now() - timedelta(hours=hours))


@shared_task
def reconcile_daily_summaries_task() -> int:
    """Nightly: recompute every rollup older than its readings, on any day (lost tasks). Idempotent."""
    return reconcile_daily_summaries()


@shared_task
def compute_health_scores_task() -> int:
    """Hourly: score every user's local yesterday that has no score yet or whose data changed since.

    Idempotent: a day already scored after its data last changed is not due again.
    """
    due = due_health_scores(now=timezone.now())
    for user_id, day in due:
        compute_health_score_task.delay(str(user_id), day.isoformat())
    return len(due)


@shared_task
def compute_health_score_task(user_id: str, day: str) -> None:
    """Compute and store one local day's score. Idempotent: an upsert derived from the readings alone."""
    user = User.objects.filter(pk=user_id).first()
    if user is not None:  # deleted since enqueue: nothing to do
        compute_health_score(user=user, local_date=date.fromisoformat(day))
