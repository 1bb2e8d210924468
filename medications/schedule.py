"""A plan's schedule as dose instants: one pure function of (schedule, zone, window), no ORM.

Plain dataclasses in, aware UTC datetimes out, so every rule is tested without a database
(tests/test_schedule.py, in New York and Auckland across all four 2026 DST changes). The dose job calls
`occurrences` for the next 48 hours of each active plan; the plan serializer calls `parse_times` and `validate`,
whose `ScheduleError` (a ValueError naming its `field`) is a 400.

Semantics:
- A schedule first gives a sequence of NAIVE local wall-clock times, in one of three forms:
  `times` on each day from `start_date` (only on `days_of_week` if given, 0 = Monday);
  every `interval_hours` from `start_date` at the first time (08:00 if none), by arithmetic on the naive clock;
  or an RFC 5545 `rrule` expanded by dateutil with DTSTART = `start_date` at the first time (08:00 if none).
  An RRULE without BYHOUR and of FREQ=DAILY or coarser gives dates: each of `times` applies to each date it
  yields (its own time when `times` is empty). A rule with BYHOUR, or an HOURLY one, gives its own times, and
  then `times` holds at most the first dose's time. A date-only UNTIL includes that whole local day; an UNTIL
  in UTC (…Z) is refused, since DTSTART is a floating local time (RFC 5545 §3.3.10 wants the same kind).
  Nothing falls before `start_date` or after `end_date` (inclusive), as local dates in the mode's zone.
- timing "clock" (08:00 local, also after travel): the wall times are localised in `zone`, the patient's current
  timezone, by RFC 5545's rule (§3.3.5): a time that does not exist (the spring-forward gap) takes the offset
  before the gap, so it lands the gap's length later (02:30 → 03:30 EDT in New York on 2026-03-08); a time that
  happens twice (fall back) is its first occurrence. In zoneinfo that is fold=0 for both. Instants are then
  de-duplicated (02:00 and 03:00 on a spring-forward day are the same instant): a DST day never adds a dose.
- timing "elapsed" (every 12 h means 12 h): the same wall times are laid out in the fixed UTC offset that
  `anchor_timezone` has at the plan's first dose; `zone` plays no part. Twice daily at 08:00/20:00 made in New
  York in winter stays 13:00Z/01:00Z all year (09:00/21:00 EDT in summer), wherever the patient travels.
- Expansion is bounded by the window: the naive sequence is walked only between the window's local bounds padded
  by a day (RRULEs through `between()`, from a DTSTART moved forward by whole intervals), then instants are kept
  in [start, end).
- validate refuses what would make expansion a storm or a search: FREQ=SECONDLY/MINUTELY, more than 48 doses in
  a local day (over the first 14 days), COUNT over 1000 (COUNT is walked from the real start), a rule with no
  dose in its first four years, and the parts BYSECOND, BYYEARDAY, BYWEEKNO, BYEASTER and BYSETPOS (dateutil
  searches to the year 9999 for a rule that names no date; the common such rules are refused by their parts).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

CLOCK = "clock"
ELAPSED = "elapsed"
TIMINGS = (CLOCK, ELAPSED)
DEFAULT_TIME = time(8)
MAX_TIMES = 24
MAX_DOSES_PER_DAY = 48  # what a rule may yield in one local day before it is a dose storm
STORM_CHECK_DAYS = 14
INTERVAL_HOURS = (1, 672)  # an hour to four weeks

# Parts a dose schedule needs. BYSECOND, BYYEARDAY, BYWEEKNO, BYEASTER and BYSETPOS are refused: they add
# nothing a dose needs, and some combinations name no date at all, which dateutil searches for up to year 9999.
RRULE_PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYHOUR", "BYMINUTE"}
)
FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
MAX_RULE_INTERVAL = 1000
MAX_COUNT = 1000  # COUNT is counted from the first dose, so expanding it walks from there: keep that short
EMPTY_CHECK_DAYS = 4 * 366

_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_DATE_ONLY_UNTIL = re.compile(r"^\d{8}$")
_DAY = timedelta(days=1)


class ScheduleError(ValueError):
    """A schedule that cannot be: its message is for the client (a 400), `field` names what is wrong."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Schedule:
    start_date: date
    end_date: date | None = None  # inclusive, local
    times: tuple[time, ...] = ()  # local times of day
    days_of_week: tuple[int, ...] = ()  # 0 = Monday .. 6; empty = every day; only with plain `times`
    interval_hours: int | None = None  # every N hours from start_date at times[0] (08:00 if no times)
    rrule: str = ""  # RFC 5545 RRULE value without DTSTART, e.g. "FREQ=WEEKLY;BYDAY=MO,TH"
    timing: str = CLOCK  # CLOCK | ELAPSED
    anchor_timezone: str = "UTC"  # the zone the plan was made in

    @property
    def first_time(self) -> time:
        return min(self.times) if self.times else DEFAULT_TIME

    @property
    def first_dose(self) -> datetime:
        """The plan's first wall time (naive): DTSTART, and where an elapsed plan takes its offset."""
        return datetime.combine(self.start_date, self.first_time)


def parse_times(values: list[str]) -> tuple[time, ...]:
    """Times of day as "HH:MM" ("8:00" too), sorted, without repeats; ScheduleError(field="times") otherwise."""
    if not isinstance(values, list | tuple):
        raise ScheduleError('Give times as a list of "HH:MM" strings.', field="times")
    parsed = set()
    for value in values:
        match = _TIME.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ScheduleError(f'{value!r} is not a time of day; use "HH:MM" (00:00 to 23:59).', field="times")
        parsed.add(time(int(match[1]), int(match[2])))
    if len(parsed) > MAX_TIMES:
        raise ScheduleError(f"At most {MAX_TIMES} times a day.", field="times")
    return tuple(sorted(parsed))


def _zone(name: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise ScheduleError(f"{name!r} is not a known IANA timezone.", field=field) from error


def _rule_parts(value: str) -> dict[str, str]:
    """The RRULE's parts by upper-case name; ScheduleError for anything but NAME=VALUE;... on one line."""
    text = value.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if not text or "\n" in text or "\r" in text:
        raise ScheduleError("Give one RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO,TH.", field="rrule")
    parts = {}
    for part in text.split(";"):
        name, equals, part_value = part.partition("=")
        if not equals or not name.strip():
            raise ScheduleError(f"{part!r} is not a NAME=VALUE part of an RRULE.", field="rrule")
        parts[name.strip().upper()] = part_value.strip()
    return parts


def _checked_parts(schedule: Schedule) -> dict[str, str]:
    """The RRULE's parts, checked, with a date-only UNTIL made that day's last second."""
    parts = _rule_parts(schedule.rrule)
    if "DTSTART" in parts or "DTSTART" in schedule.rrule.upper():
        raise ScheduleError(
            "The RRULE must not contain DTSTART: the plan's start date and first time give it.", field="rrule"
        )
    unsupported = sorted(set(parts) - RRULE_PARTS)
    if unsupported:
        raise ScheduleError(
            f"Unsupported RRULE part {unsupported[0]}; use {', '.join(sorted(RRULE_PARTS))}.", field="rrule"
        )
    freq = parts.get("FREQ", "").upper()
    if freq in ("SECONDLY", "MINUTELY"):
        raise ScheduleError("FREQ=SECONDLY and FREQ=MINUTELY are not dose schedules.", field="rrule")
    if freq not in FREQUENCIES:
        raise ScheduleError(f"The RRULE needs FREQ, one of {', '.join(FREQUENCIES)}.", field="rrule")
    for name, limit in (("INTERVAL", MAX_RULE_INTERVAL), ("COUNT", MAX_COUNT)):
        if name in parts and not (parts[name].isdigit() and 1 <= int(parts[name]) <= limit):
            raise ScheduleError(f"{name} must be a whole number from 1 to {limit}.", field="rrule")
    _refuse_empty_dates(parts)
    until = parts.get("UNTIL", "")
    if until.upper().endswith("Z"):
        raise ScheduleError(
            "UNTIL must be a local date (20261231) or local date-time (20261231T200000) without Z: "
            "the schedule's times are local wall times.",
            field="rrule",
        )
    if _DATE_ONLY_UNTIL.match(until):
        parts["UNTIL"] = f"{until}T235959"  # a date-only UNTIL includes that day's doses
    return parts


def _make_rule(parts: dict[str, str], dtstart: datetime) -> rrule:
    text = ";".join(f"{name}={part_value}" for name, part_value in parts.items())
    try:
        rule = rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
        raise ScheduleError(f"The RRULE is not valid: {error}.", field="rrule") from error
    if not isinstance(rule, rrule):
        raise ScheduleError("Give one RRULE value, e.g. FREQ=WEEKLY;BYDAY=MO,TH.", field="rrule")
    return rule


def _gives_dates(parts: dict[str, str]) -> bool:
    """Whether `times` apply to the dates the rule yields: no BYHOUR, and FREQ=DAILY or coarser."""
    return "BYHOUR" not in parts and parts["FREQ"].upper() != "HOURLY"


def _rule_near(schedule: Schedule, parts: dict[str, str], low: datetime) -> rrule:
    """The rule with its DTSTART moved forward by whole intervals to at least one interval before `low`.

    dateutil walks every period from DTSTART, so a plan started years ago would cost thousands of periods per
    call. Moving DTSTART by whole intervals keeps the rule's grid; the defaults dateutil takes from DTSTART
    (the day of the month, the month) are made explicit first. COUNT counts from the real start: not moved.
    """
    first = schedule.first_dose
    freq, interval = parts["FREQ"].upper(), int(parts.get("INTERVAL", "1"))
    if "COUNT" in parts or low <= first:
        return _make_rule(parts, first)
    parts = dict(parts)
    day_given = any(name in parts for name in ("BYMONTHDAY", "BYDAY"))
    if freq in ("HOURLY", "DAILY", "WEEKLY"):
        unit = {"HOURLY": timedelta(hours=1), "DAILY": _DAY, "WEEKLY": timedelta(weeks=1)}[freq] * interval
        steps = max(0, (low - first) // unit - 1)
        return _make_rule(parts, first + steps * unit)
    if freq == "MONTHLY":
        months = max(0, ((low.year - first.year) * 12 + low.month - first.month) // interval - 1) * interval
        year, month = divmod(first.month - 1 + months, 12)
        if not day_given:
            parts["BYMONTHDAY"] = str(first.day)
        return _make_rule(parts, first.replace(year=first.year + year, month=month + 1, day=1))
    years = max(0, (low.year - first.year) // interval - 1) * interval
    if not day_given:
        parts.setdefault("BYMONTH", str(first.month))
        parts["BYMONTHDAY"] = str(first.day)
    return _make_rule(parts, first.replace(year=first.year + years, month=1, day=1))


def _refuse_empty_dates(parts: dict[str, str]) -> None:
    """Refuse the common rules that name no date (30 February, a 6th Monday): dateutil would search to 9999."""
    by_day = [day.strip() for day in parts.get("BYDAY", "").split(",") if day.strip()]
    numbered = [int(day[:-2]) for day in by_day if day[:-2].lstrip("+-").isdigit()]
    if numbered and (
        "BYMONTHDAY" in parts
        or (parts.get("FREQ", "").upper() == "MONTHLY" or "BYMONTH" in parts)
        and any(abs(n) > 5 for n in numbered)
    ):
        raise ScheduleError("The RRULE's numbered BYDAY (e.g. 2MO) names no date with these parts.", field="rrule")
    interval = parts.get("INTERVAL", "1")
    if by_day and parts.get("FREQ", "").upper() == "DAILY" and interval.isdigit() and int(interval) % 7 == 0:
        raise ScheduleError("Every 7th day falls on one weekday; use FREQ=WEEKLY for BYDAY.", field="rrule")
    if "BYMONTHDAY" not in parts:
        return
    try:
        months = [int(month) for month in parts["BYMONTH"].split(",")] if "BYMONTH" in parts else range(1, 13)
        days = [int(day) for day in parts["BYMONTHDAY"].split(",")]
    except ValueError as error:
        raise ScheduleError(f"The RRULE is not valid: {error}.", field="rrule") from error
    lengths = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
    if not any(0 < abs(day) <= lengths.get(month, 0) for month in months for day in days):
        raise ScheduleError("The RRULE's BYMONTH and BYMONTHDAY name no date.", field="rrule")


def validate(schedule: Schedule) -> None:
    """ScheduleError for a schedule that cannot be expanded, or would be a dose storm."""
    if schedule.timing not in TIMINGS:
        raise ScheduleError(f"Timing must be one of {', '.join(TIMINGS)}.", field="timing")
    _zone(schedule.anchor_timezone, "anchor_timezone")
    if schedule.end_date is not None and schedule.end_date < schedule.start_date:
        raise ScheduleError("The end date is before the start date.", field="end_date")
    if len(schedule.times) > MAX_TIMES:
        raise ScheduleError(f"At most {MAX_TIMES} times a day.", field="times")
    if len(set(schedule.times)) != len(schedule.times):
        raise ScheduleError("A time is given twice.", field="times")
    if schedule.interval_hours is not None and schedule.rrule:
        raise ScheduleError("Give either interval_hours or an RRULE, not both.", field="rrule")
    if schedule.days_of_week and (schedule.interval_hours is not None or schedule.rrule):
        raise ScheduleError("days_of_week goes with plain times; with an RRULE use BYDAY.", field="days_of_week")
    if any(not isinstance(day, int) or not 0 <= day <= 6 for day in schedule.days_of_week):
        raise ScheduleError("Days of the week are 0 (Monday) to 6 (Sunday).", field="days_of_week")
    if len(set(schedule.days_of_week)) != len(schedule.days_of_week):
        raise ScheduleError("A day of the week is given twice.", field="days_of_week")
    if schedule.interval_hours is not None:
        low, high = INTERVAL_HOURS
        if not isinstance(schedule.interval_hours, int) or not low <= schedule.interval_hours <= high:
            raise ScheduleError(f"interval_hours must be from {low} to {high}.", field="interval_hours")
        if len(schedule.times) > 1:
            raise ScheduleError("With interval_hours, give at most one time: the first dose's.", field="times")
        return
    if schedule.rrule:
        parts = _checked_parts(schedule)
        rule, gives_dates = _make_rule(parts, schedule.first_dose), _gives_dates(parts)
        if not gives_dates and len(schedule.times) > 1:
            raise ScheduleError(
                "This RRULE sets its own times (BYHOUR or FREQ=HOURLY); give at most one time: the first dose's.",
                field="times",
            )
        _refuse_empty(schedule, rule)
        _refuse_storm(schedule, rule, gives_dates)
        return
    if not schedule.times:
        raise ScheduleError("Give at least one time of day, interval_hours or an RRULE.", field="times")


def _refuse_empty(schedule: Schedule, rule: rrule) -> None:
    """A rule must give a dose within its first four years (a leap day does), so expanding it stays cheap."""
    first = schedule.first_dose
    found = rule.after(first, inc=True)
    if found is None or found > first + timedelta(days=EMPTY_CHECK_DAYS):
        raise ScheduleError("This RRULE gives no dose in the four years from the start date.", field="rrule")


def _refuse_storm(schedule: Schedule, rule: rrule, gives_dates: bool) -> None:
    first = schedule.first_dose
    starts = rule.between(first, first + timedelta(days=STORM_CHECK_DAYS), inc=True)
    per_day = Counter(start.date() for start in starts)
    busiest = max(per_day.values(), default=0) * ((len(schedule.times) or 1) if gives_dates else 1)
    if busiest > MAX_DOSES_PER_DAY:
        raise ScheduleError(f"This RRULE gives {busiest} doses in a day; at most {MAX_DOSES_PER_DAY}.", field="rrule")


def _wall_times(schedule: Schedule, low: datetime, high: datetime) -> list[datetime]:
    """The naive wall times in [low, high), within start_date..end_date."""
    if schedule.interval_hours is not None:
        first, step = schedule.first_dose, timedelta(hours=schedule.interval_hours)
        index = max(0, math.ceil((low - first) / step))
        walls = []
        while (wall := first + index * step) < high:
            walls.append(wall)
            index += 1
        return walls
    if schedule.rrule:
        parts = _checked_parts(schedule)
        rule = _rule_near(schedule, parts, low - _DAY)
        if not _gives_dates(parts):
            return rule.between(low, high, inc=True)
        # A date's later times may fall after `low` when its first does not: look a day further back.
        days = {start.date() for start in rule.between(low - _DAY, high, inc=True)}
        times = schedule.times or (schedule.first_time,)
        return [datetime.combine(day, wall) for day in sorted(days) for wall in times]
    walls = []
    day = low.date()
    while day <= high.date():
        if not schedule.days_of_week or day.weekday() in schedule.days_of_week:
            walls.extend(datetime.combine(day, wall) for wall in schedule.times)
        day += _DAY
    return walls


def _localiser(schedule: Schedule, zone: str) -> tzinfo:
    if schedule.timing == ELAPSED:
        anchor = _zone(schedule.anchor_timezone, "anchor_timezone")
        offset = schedule.first_dose.replace(fold=0, tzinfo=anchor).utcoffset()
        return timezone(offset)
    return _zone(zone, "timezone")


def occurrences(schedule: Schedule, *, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The dose instants in [start, end), aware UTC, sorted, each once (see the module docstring)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    if end <= start:
        return []
    local = _localiser(schedule, zone)
    low = max(start.astimezone(local).replace(tzinfo=None) - _DAY, datetime.combine(schedule.start_date, time()))
    high = end.astimezone(local).replace(tzinfo=None) + _DAY
    if schedule.end_date is not None:
        high = min(high, datetime.combine(schedule.end_date + _DAY, time()))
    if high <= low:
        return []
    instants = set()
    for wall in _wall_times(schedule, low, high):
        if low <= wall < high:
            moment = wall.replace(fold=0, tzinfo=local).astimezone(UTC)
            if start <= moment < end:
                instants.add(moment)
    return sorted(instants)


def local_date_of(instant: datetime, zone: str) -> date:
    """The calendar date of an instant in a zone (a dose's local date for adherence)."""
    return instant.astimezone(_zone(zone, "timezone")).date()
