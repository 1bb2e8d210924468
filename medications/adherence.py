"""Medication adherence: dose counts and the proportion of days covered (PDC), from plain dose entries.

A pure core, like the part functions of health_metrics/scoring.py: no database here. A loader turns a plan's
Dose rows into `DoseEntry`s (the patient's local day, status, late, as-needed) and calls `plan_adherence` or, for
all of a patient's plans, `overall_adherence`.

Counts, over doses whose local day is within [start, end]:

- `taken`: taken scheduled doses, on time or late; `late`: those of them marked late (taken after the grace
  window, or logged after the dose was marked missed).
- `missed`, `skipped`: scheduled doses with that status.
- `pending`: scheduled doses not yet due or decided (status "scheduled").
- `as_needed`: as-needed (PRN) doses taken; they are not in `taken` and never in the PDC.

PDC follows the Pharmacy Quality Alliance's proportion of days covered, from doses instead of pharmacy fills:

- A plan's period runs from the later of `start` and its first scheduled dose day to `end`. Entries before `start`
  may be given: they set the first dose day and carry coverage forward into the period (below).
- A dose day (a local day with at least one scheduled dose) is covered when every decided dose of that day was
  taken (a late dose was taken, so it covers), and not covered when any of them was missed or skipped.
- A day without scheduled doses (a weekly plan's other days) takes the state of the most recent dose day before
  it: that dose's "days' supply", as in claims PDC.
- Days whose doses are all still pending (today, the future), and the days that take their state, leave the
  period: they are in neither the numerator nor the denominator. So do days before the first dose.
- pdc = days_covered / days_in_period, rounded to 4 places; None when days_in_period is 0 or the plan has only
  as-needed doses. adherent = pdc >= PDC_THRESHOLD (0.8, PQA's threshold); None when pdc is None.

Since a day without doses takes the state of the last dose day before it, the caller ends a plan's period where the
plan stopped (pass an `end` no later than its end date, or `plan_ends` to `overall_adherence`); otherwise the last
dose carries to `end`.

Overall, for several plans: counts are sums. A day is in the overall period when at least one plan's period
includes it, and covered when every plan whose period includes it covers it (all medications taken that day).
Plans with only as-needed doses take no part in the overall PDC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

PDC_THRESHOLD = 0.8

SCHEDULED = "scheduled"
TAKEN = "taken"
SKIPPED = "skipped"
MISSED = "missed"
STATUSES = (SCHEDULED, TAKEN, SKIPPED, MISSED)


@dataclass(frozen=True, slots=True)
class DoseEntry:
    """One dose of a plan, as adherence needs it."""

    plan_id: str
    local_date: date  # the patient's local day of the dose
    status: str  # "scheduled" | "taken" | "skipped" | "missed"
    late: bool = False  # taken late (after the grace window, or logged after it was marked missed)
    as_needed: bool = False  # a PRN dose (logged, never scheduled)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Unknown dose status {self.status!r}; expected one of {', '.join(STATUSES)}.")


@dataclass(frozen=True, slots=True)
class Adherence:
    taken: int
    late: int
    missed: int
    skipped: int
    pending: int
    as_needed: int
    days_covered: int
    days_in_period: int
    pdc: float | None
    adherent: bool | None
    first_dose_date: date | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Counts:
    taken: int = 0
    late: int = 0
    missed: int = 0
    skipped: int = 0
    pending: int = 0
    as_needed: int = 0

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.taken + other.taken,
            self.late + other.late,
            self.missed + other.missed,
            self.skipped + other.skipped,
            self.pending + other.pending,
            self.as_needed + other.as_needed,
        )


def _counts(entries: Sequence[DoseEntry], start: date, end: date) -> _Counts:
    taken = late = missed = skipped = pending = as_needed = 0
    for entry in entries:
        if not start <= entry.local_date <= end:
            continue
        if entry.as_needed:
            as_needed += entry.status == TAKEN
        elif entry.status == TAKEN:
            taken += 1
            late += entry.late
        elif entry.status == MISSED:
            missed += 1
        elif entry.status == SKIPPED:
            skipped += 1
        else:
            pending += 1
    return _Counts(taken, late, missed, skipped, pending, as_needed)


def _day_state(statuses: set[str]) -> bool | None:
    """A dose day: covered (True), not covered (False), or all pending (None: out of the period)."""
    if statuses & {MISSED, SKIPPED}:
        return False
    if TAKEN in statuses:
        return True
    return None


def _plan_days(entries: Sequence[DoseEntry], start: date, end: date) -> tuple[dict[date, bool], date | None]:
    """One plan's period: {day: covered} for the days in it, and its first scheduled dose day (None: PRN only)."""
    by_day: dict[date, set[str]] = defaultdict(set)
    for entry in entries:
        if not entry.as_needed and entry.local_date <= end:
            by_day[entry.local_date].add(entry.status)
    if not by_day:
        return {}, None
    first = min(by_day)
    # The state carried into the period: that of the last dose day before it.
    carried = None
    earlier = [day for day in by_day if day < start]
    if earlier:
        carried = _day_state(by_day[max(earlier)])
    days: dict[date, bool] = {}
    day = max(start, first)
    while day <= end:
        if day in by_day:
            carried = _day_state(by_day[day])
        if carried is not None:
            days[day] = carried
        day += timedelta(days=1)
    return days, first


def _result(counts: _Counts, days: dict[date, bool], first: date | None) -> Adherence:
    covered = sum(days.values())
    pdc = round(covered / len(days), 4) if days else None
    return Adherence(
        taken=counts.taken,
        late=counts.late,
        missed=counts.missed,
        skipped=counts.skipped,
        pending=counts.pending,
        as_needed=counts.as_needed,
        days_covered=covered,
        days_in_period=len(days),
        pdc=pdc,
        adherent=None if pdc is None else pdc >= PDC_THRESHOLD,
        first_dose_date=first,
    )


def plan_adherence(entries: Sequence[DoseEntry], *, start: date, end: date) -> Adherence:
    """One plan's adherence over [start, end] (see the module docstring). `entries` may begin before `start`."""
    days, first = _plan_days(entries, start, end)
    return _result(_counts(entries, start, end), days, first)


def overall_adherence(
    entries: Sequence[DoseEntry], *, start: date, end: date, plan_ends: Mapping[str, date] | None = None
) -> Adherence:
    """All plans together over [start, end]: summed counts, and a day covered only when every plan due that day
    covered it. `plan_ends` gives a plan's last day when it stopped before `end` (completed, discontinued, paused).
    `first_dose_date` is the earliest of the plans' first scheduled dose days."""
    by_plan: dict[str, list[DoseEntry]] = defaultdict(list)
    for entry in entries:
        by_plan[entry.plan_id].append(entry)
    plan_ends = plan_ends or {}
    counts = _Counts()
    days: dict[date, bool] = {}
    firsts: list[date] = []
    for plan_id, plan_entries in by_plan.items():
        plan_end = min(end, plan_ends.get(plan_id, end))
        counts += _counts(plan_entries, start, plan_end)
        plan_days, first = _plan_days(plan_entries, start, plan_end)
        if first is not None:
            firsts.append(first)
        for day, covered in plan_days.items():
            days[day] = days.get(day, True) and covered
    return _result(counts, days, min(firsts, default=None))
