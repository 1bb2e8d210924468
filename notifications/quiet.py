"""Quiet hours as a pure function of (now, zone, window): test it without the database.

A window runs from `start` to `end` local time, across midnight when end is earlier than start (22:00-07:00).
Local times are read on the person's wall clock, so the window follows daylight-saving changes: on the
night the clocks go forward, 07:00 still ends it. An end that falls in a skipped hour ends it at the first
instant after the gap; an end that happens twice (clocks going back) ends it the first time.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet window that `now` falls in ends (aware, UTC), or None when `now` is not in one."""
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:  # across midnight
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return wall_clock(end_day, end, zone)


def wall_clock(day, at: time, zone: ZoneInfo) -> datetime:  # noqa: ANN001 - a date
    """The instant (UTC) the wall clock in `zone` first shows `at` on `day`; in a skipped hour, when it ends."""
    naive = datetime.combine(day, at)
    while not _exists(naive, zone):  # the clocks jumped over it: the first minute they show after the jump
        naive = (naive + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive
