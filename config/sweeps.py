"""The loop every sweeper ends in: hand each stranded row's id to its task again.

Sweepers (stranded ingest batches, export jobs, outbox emails) find work that never reached a
worker (the broker was down when it was stored) or whose worker died; each task claims its row
by a conditional update, so an id handed on twice is still processed once.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db.models import QuerySet


def enqueue_each(task: Task, ids: QuerySet[Any, Any], *, limit: int) -> int:
    """Publish `task(str(id))` for the first `limit` ids (the rest wait for the next sweep); return how many."""
    count = 0
    for pk in ids[:limit]:
        task.delay(str(pk))
        count += 1
    return count
