"""The two loops of periodic jobs over many people's items.

`Sweep`: one item's failure is logged and counted, the rest go on. A beat job that walks every device,
every patient with new readings or every expired export must not let one person's bad row (a
configuration written before it was checked, a time zone that no longer exists) stop the work for
everyone after it. Each item runs in its own savepoint, so a database error rolls back that item's
writes only and leaves the connection usable for the next.

`enqueue_each`: the loop every sweeper of stranded work ends in, handing each row's id to its task
again. `hand_on`: the same for rows just written (after commit) and for sweepers that must not stop at a
broker that is down: an id that cannot be published stays queued for the next sweep. Sweepers (stranded
ingest batches, export jobs, outbox emails, notification and webhook deliveries) find work that never reached a
worker (the broker was down when it was stored) or whose worker died; each task claims its row by a
conditional update, so an id handed on twice is still processed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from celery import Task
from django.db import transaction
from django.db.models import QuerySet

logger = structlog.get_logger(__name__)


class Sweep:
    """Counts the items that failed; `with sweep.item(device=pk):` around each item's work."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = 0
        self.failed = 0

    @contextmanager
    def item(self, **ids: Any) -> Iterator[None]:
        try:
            with transaction.atomic():
                yield
        except Exception:  # any failure of one item: logged with its ids, and the sweep goes on
            self.failed += 1
            logger.exception("sweep_item_failed", sweep=self.name, **{k: str(v) for k, v in ids.items()})
        else:
            self.done += 1


def enqueue_each(task: Task, ids: QuerySet[Any, Any], *, limit: int) -> int:
    """Publish `task(str(id))` for the first `limit` ids (the rest wait for the next sweep); return how many."""
    count = 0
    for pk in ids[:limit]:
        task.delay(str(pk))
        count += 1
    return count


def hand_on(task: Task, ids: Iterable[Any]) -> int:
    """Publish `task(id)` for each id; one the broker refuses is logged and left to the next sweep (its row
    stays queued). Returns how many were published."""
    published = 0
    for pk in ids:
        try:
            task.delay(pk)
        except Exception:  # the broker is down: the row stays queued and the sweeper hands it on
            logger.warning("task_not_enqueued", task=task.name, id=str(pk), exc_info=True)
        else:
            published += 1
    return published
