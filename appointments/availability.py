"""Free slots, as one pure function of (weekly hours, date overrides, blocked ranges, rules, now).

No ORM here: plain dataclasses in, aware UTC datetimes out, so every rule is tested without a database
(tests/test_availability.py, in three time zones across both DST changes). `selectors.provider_slots` loads
the rows and calls it; `services.book_appointment` asks `slot_problem` whether a start is bookable.

Rules, all in the provider's zone:
- A local day's working time is its weekday's windows plus its `extra` overrides, minus its `unavailable`
  overrides (one without times closes the whole day, extra hours of that date excepted).
- Wall times are made instants with `fold=0`: a time that does not exist (inside the spring-forward gap) is read
  with the offset before the change, so it lands the gap's length later (02:30 → 03:30 in New York); a time
  that happens twice (the fall-back hour) is its first occurrence. A window spanning a change is as long as
  the clock says it is in real time (01:00-03:00 is one hour on the spring day, three on the autumn day).
- Slots step by the interval from the start of each working interval, in real time; a slot fits wholly
  inside working time. Its buffers may lie outside working time, but the slot with its buffers (its blocked
  range, half-open) must not overlap another booking's blocked range, which holds that booking's buffers.
- A slot starts no earlier than now + minimum notice and before now + horizon.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

UNAVAILABLE = "unavailable"
EXTRA = "extra"

Range = tuple[datetime, datetime]  # half-open [start, end), aware


@dataclass(frozen=True)
class Window:
    """Weekly working time: weekday 0 (Monday) to 6, local wall times, start < end."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True)
class Override:
    """One local date: UNAVAILABLE (times None: the whole day) or EXTRA hours (start-end)."""

    day: date
    kind: str
    start: time | None = None
    end: time | None = None


@dataclass(frozen=True)
class Rules:
    duration: timedelta
    interval: timedelta = timedelta(minutes=15)
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    minimum_notice: timedelta = timedelta(hours=2)
    horizon: timedelta = timedelta(days=60)

    def blocked(self, start: datetime) -> Range:
        """What a booking starting at `start` holds of the provider's time: the visit with its buffers."""
        return start - self.buffer_before, start + self.duration + self.buffer_after


def instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """A local wall time on `day` as an aware UTC instant (fold=0: see the module docstring)."""
    return datetime.combine(day, wall.replace(fold=0), tzinfo=zone).astimezone(UTC)


def _union(ranges: Iterable[Range]) -> list[Range]:
    merged: list[Range] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(ranges: list[Range], holes: Iterable[Range]) -> list[Range]:
    for hole_start, hole_end in holes:
        kept: list[Range] = []
        for start, end in ranges:
            if hole_end <= start or end <= hole_start:
                kept.append((start, end))
                continue
            if start < hole_start:
                kept.append((start, hole_start))
            if hole_end < end:
                kept.append((hole_end, end))
        ranges = kept
    return ranges


def working_time(*, day: date, zone: ZoneInfo, hours: Iterable[Window], overrides: Iterable[Override]) -> list[Range]:
    """The working intervals of one local day, as sorted disjoint UTC ranges."""
    todays = [o for o in overrides if o.day == day]
    closed = any(o.kind == UNAVAILABLE and o.start is None for o in todays)
    ranges = (
        []
        if closed
        else [(instant(day, w.start, zone), instant(day, w.end, zone)) for w in hours if w.weekday == day.weekday()]
    )
    ranges += [
        (instant(day, o.start, zone), instant(day, o.end, zone))
        for o in todays
        if o.kind == EXTRA and o.start and o.end
    ]
    holes = [
        (instant(day, o.start, zone), instant(day, o.end, zone))
        for o in todays
        if o.kind == UNAVAILABLE and o.start is not None and o.end is not None
    ]
    return [(s, e) for s, e in _subtract(_union(r for r in ranges if r[0] < r[1]), holes) if s < e]


def working_starts(
    *, day: date, zone: ZoneInfo, hours: Iterable[Window], overrides: Iterable[Override], rules: Rules
) -> list[datetime]:
    """Every slot start of one local day that fits wholly in working time (ignoring bookings, notice, horizon)."""
    starts = []
    for start, end in working_time(day=day, zone=zone, hours=hours, overrides=overrides):
        slot = start
        while slot + rules.duration <= end:
            starts.append(slot)
            slot += rules.interval
    return starts


class _Taken:
    """Blocked ranges merged into sorted disjoint ones, for an overlap test by bisection.

    Measured (bench/appointments.py): testing every slot against every booking made 30 days with 500 bookings
    take 49 ms against 6 ms with none; a bisection per slot keeps it near the empty case.
    """

    def __init__(self, taken: Iterable[Range]) -> None:
        merged = _union(taken)
        self.starts = [start for start, _ in merged]
        self.ends = [end for _, end in merged]

    def overlaps(self, blocked: Range) -> bool:
        index = bisect_right(self.ends, blocked[0])  # the first merged range ending after this one starts
        return index < len(self.starts) and self.starts[index] < blocked[1]


def free_slots(
    *,
    zone: ZoneInfo,
    hours: Sequence[Window],
    overrides: Sequence[Override],
    blocked: Sequence[Range],
    rules: Rules,
    now: datetime,
    start_date: date,
    end_date: date,
) -> list[datetime]:
    """The bookable slot starts (aware, UTC) of the local days start_date..end_date, both included, in order."""
    earliest, latest = now + rules.minimum_notice, now + rules.horizon
    taken = _Taken(blocked)
    slots = []
    day = start_date
    while day <= end_date:
        for start in working_starts(day=day, zone=zone, hours=hours, overrides=overrides, rules=rules):
            if earliest <= start < latest and not taken.overlaps(rules.blocked(start)):
                slots.append(start)
        day += timedelta(days=1)
    return slots


def slot_problem(
    *,
    start: datetime,
    zone: ZoneInfo,
    hours: Sequence[Window],
    overrides: Sequence[Override],
    rules: Rules,
    now: datetime,
) -> tuple[str, str] | None:
    """Why `start` cannot be booked, as (code, detail), or None. Other bookings are the database's to refuse."""
    if start <= now:
        return "in_the_past", "The slot has already started."
    if start < now + rules.minimum_notice:
        minutes = int(rules.minimum_notice.total_seconds() // 60)
        return "inside_minimum_notice", f"Book at least {minutes} minutes ahead."
    if start >= now + rules.horizon:
        return "beyond_horizon", f"Book at most {rules.horizon.days} days ahead."
    day = start.astimezone(zone).date()
    if start not in working_starts(day=day, zone=zone, hours=hours, overrides=overrides, rules=rules):
        return "outside_availability", "The slot is not within the provider's available times."
    return None
