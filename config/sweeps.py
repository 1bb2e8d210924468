"""The loop of a periodic job over many people's items: one item's failure is logged and counted, the rest go on.

A beat job that walks every device, every patient with new readings or every expired export must not let
one person's bad row (a configuration written before it was checked, a time zone that no longer exists)
stop the work for everyone after it. Each item runs in its own savepoint, so a database error rolls back
that item's writes only and leaves the connection usable for the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from django.db import transaction

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
