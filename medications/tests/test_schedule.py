"""The pure schedule expansion, on hand-made schedules (no database): forms, bounds, validation, and all four 2026
DST changes in New York and Auckland, in clock and elapsed timing.

2026 changes: New York 8 March (02:00 → 03:00) and 1 November (02:00 → 01:00); Auckland 5 April (03:00 → 02:00)
and 27 September (02:00 → 03:00).
"""

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from medications.schedule import (
    Schedule,
    ScheduleError,
    local_date_of,
    occurrences,
    parse_times,
    validate,
)

NEW_YORK, AUCKLAND, LONDON = "America/New_York", "Pacific/Auckland", "Europe/London"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def days(zone: str, first: date, count: int) -> tuple[datetime, datetime]:
    """The window of `count` local days from `first` in `zone`, as UTC instants."""
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time(), tzinfo=tz).astimezone(UTC)
    return start, datetime.combine(first + timedelta(days=count), time(), tzinfo=tz).astimezone(UTC)


def expand(schedule: Schedule, zone: str, first: date, count: int = 3) -> list[datetime]:
    validate(schedule)
    start, end = days(zone, first, count)
    return occurrences(schedule, zone=zone, start=start, end=end)


def walls(instants: list[datetime], zone: str) -> list[str]:
    return [moment.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M%z") for moment in instants]


def gaps(instants: list[datetime]) -> set[timedelta]:
    return {later - earlier for earlier, later in zip(instants, instants[1:], strict=False)}


# --- Clock timing: 08:00 local across every change ----------------------------------------------------------------

CLOCK_0800 = [
    pytest.param(
        NEW_YORK, date(2026, 3, 7), [utc(2026, 3, 7, 13), utc(2026, 3, 8, 12), utc(2026, 3, 9, 12)], id="ny-spring"
    ),
    pytest.param(
        NEW_YORK,
        date(2026, 10, 31),
        [utc(2026, 10, 31, 12), utc(2026, 11, 1, 13), utc(2026, 11, 2, 13)],
        id="ny-autumn",
    ),
    pytest.param(
        AUCKLAND, date(2026, 4, 4), [utc(2026, 4, 3, 19), utc(2026, 4, 4, 20), utc(2026, 4, 5, 20)], id="akl-autumn"
    ),
    pytest.param(
        AUCKLAND, date(2026, 9, 26), [utc(2026, 9, 25, 20), utc(2026, 9, 26, 19), utc(2026, 9, 27, 19)], id="akl-spring"
    ),
]


@pytest.mark.parametrize(("zone", "first", "expected"), CLOCK_0800)
def test_clock_daily_0800_stays_0800_local_across_a_change_while_its_utc_instant_moves(zone, first, expected):
    schedule = Schedule(start_date=date(2026, 1, 1), times=(time(8),))

    doses = expand(schedule, zone, first)

    assert doses == expected
    assert [wall[6:11] for wall in walls(doses, zone)] == ["08:00", "08:00", "08:00"]
    assert all(dose.tzinfo is UTC for dose in doses)


def test_clock_0230_on_new_yorks_spring_forward_day_is_taken_at_0330_edt():
    schedule = Schedule(start_date=date(2026, 3, 1), times=(time(2, 30),))

    doses = expand(schedule, NEW_YORK, date(2026, 3, 7))

    assert doses == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]
    assert walls(doses, NEW_YORK) == ["03-07 02:30-0500", "03-08 03:30-0400", "03-09 02:30-0400"]


def test_clock_0230_on_aucklands_spring_forward_day_is_taken_at_0330_nzdt():
    schedule = Schedule(start_date=date(2026, 9, 1), times=(time(2, 30),))

    doses = expand(schedule, AUCKLAND, date(2026, 9, 27), count=1)

    assert doses == [utc(2026, 9, 26, 14, 30)]
    assert walls(doses, AUCKLAND) == ["09-27 03:30+1300"]


def test_clock_0130_on_new_yorks_fall_back_day_is_one_dose_at_the_first_occurrence():
    schedule = Schedule(start_date=date(2026, 10, 1), times=(time(1, 30),))

    doses = expand(schedule, NEW_YORK, date(2026, 11, 1), count=1)

    assert doses == [utc(2026, 11, 1, 5, 30)]
    assert walls(doses, NEW_YORK) == ["11-01 01:30-0400"]


def test_clock_0230_on_aucklands_dst_end_day_is_one_dose_at_the_first_occurrence():
    schedule = Schedule(start_date=date(2026, 4, 1), times=(time(2, 30),))

    doses = expand(schedule, AUCKLAND, date(2026, 4, 5), count=1)

    assert doses == [utc(2026, 4, 4, 13, 30)]
    assert walls(doses, AUCKLAND) == ["04-05 02:30+1300"]


def test_clock_0200_and_0300_on_a_spring_forward_day_are_one_dose_not_two():
    schedule = Schedule(start_date=date(2026, 3, 1), times=(time(2), time(2, 30), time(3)))

    doses = expand(schedule, NEW_YORK, date(2026, 3, 8), count=1)

    assert doses == [utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30)]
    assert walls(doses, NEW_YORK) == ["03-08 03:00-0400", "03-08 03:30-0400"]


CHANGE_DAYS = [
    pytest.param(NEW_YORK, date(2026, 3, 8), id="ny-spring"),
    pytest.param(NEW_YORK, date(2026, 11, 1), id="ny-autumn"),
    pytest.param(AUCKLAND, date(2026, 4, 5), id="akl-autumn"),
    pytest.param(AUCKLAND, date(2026, 9, 27), id="akl-spring"),
]
FORMS = [
    pytest.param({"times": (time(1), time(1, 30), time(2), time(2, 30), time(3), time(8))}, id="times"),
    pytest.param({"interval_hours": 1, "times": (time(0),)}, id="interval-1h"),
    pytest.param({"interval_hours": 3, "times": (time(2),)}, id="interval-3h"),
    pytest.param({"rrule": "FREQ=HOURLY;BYMINUTE=0,30", "times": (time(0),)}, id="rrule-hourly"),
    pytest.param({"rrule": "FREQ=DAILY", "times": (time(1, 30), time(2, 30))}, id="rrule-daily-times"),
]


@pytest.mark.parametrize(("zone", "day"), CHANGE_DAYS)
@pytest.mark.parametrize("form", FORMS)
def test_a_48_hour_window_over_a_dst_day_never_has_more_doses_than_over_an_ordinary_day(zone, day, form):
    schedule = Schedule(start_date=date(2026, 1, 1), **form)
    validate(schedule)
    start, _ = days(zone, day, 1)
    ordinary_start, _ = days(zone, day - timedelta(days=14), 1)

    on_change = occurrences(schedule, zone=zone, start=start, end=start + timedelta(hours=48))
    ordinary = occurrences(schedule, zone=zone, start=ordinary_start, end=ordinary_start + timedelta(hours=48))

    assert len(on_change) <= len(ordinary)
    assert len(set(on_change)) == len(on_change)


def test_clock_every_8_hours_follows_the_wall_clock_so_the_fall_back_night_has_a_9_hour_gap():
    schedule = Schedule(start_date=date(2026, 10, 31), times=(time(6),), interval_hours=8)

    doses = expand(schedule, NEW_YORK, date(2026, 10, 31), count=2)

    assert doses == [
        utc(2026, 10, 31, 10),
        utc(2026, 10, 31, 18),
        utc(2026, 11, 1, 2),
        utc(2026, 11, 1, 11),
        utc(2026, 11, 1, 19),
        utc(2026, 11, 2, 3),
    ]


# --- Elapsed timing: real hours, a fixed offset -------------------------------------------------------------------

ELAPSED_12H = [
    pytest.param(NEW_YORK, date(2026, 3, 1), date(2026, 3, 6), utc(2026, 3, 6, 13), id="ny-spring"),
    pytest.param(NEW_YORK, date(2026, 10, 1), date(2026, 10, 29), utc(2026, 10, 29, 12), id="ny-autumn"),
    pytest.param(AUCKLAND, date(2026, 4, 1), date(2026, 4, 3), utc(2026, 4, 2, 19), id="akl-autumn"),
    pytest.param(AUCKLAND, date(2026, 9, 20), date(2026, 9, 25), utc(2026, 9, 24, 20), id="akl-spring"),
]


@pytest.mark.parametrize(("zone", "start_date", "first", "first_dose"), ELAPSED_12H)
def test_elapsed_every_12_hours_keeps_exactly_12_hours_across_a_change(zone, start_date, first, first_dose):
    schedule = Schedule(
        start_date=start_date, times=(time(8),), interval_hours=12, timing="elapsed", anchor_timezone=zone
    )

    doses = expand(schedule, zone, first, count=6)

    assert doses[0] == first_dose
    assert len(doses) == 12
    assert gaps(doses) == {timedelta(hours=12)}


def test_elapsed_twice_daily_made_in_new_york_winter_keeps_its_utc_instants_in_summer():
    schedule = Schedule(
        start_date=date(2026, 1, 10), times=(time(8), time(20)), timing="elapsed", anchor_timezone=NEW_YORK
    )

    winter = expand(schedule, NEW_YORK, date(2026, 1, 20), count=1)
    summer = expand(schedule, NEW_YORK, date(2026, 7, 1), count=1)

    assert winter == [utc(2026, 1, 20, 13), utc(2026, 1, 21, 1)]
    assert summer == [utc(2026, 7, 1, 13), utc(2026, 7, 2, 1)]
    assert walls(summer, NEW_YORK) == ["07-01 09:00-0400", "07-01 21:00-0400"]


def test_elapsed_every_8_hours_keeps_exactly_8_hours_over_the_fall_back_night():
    schedule = Schedule(
        start_date=date(2026, 10, 31),
        times=(time(6),),
        interval_hours=8,
        timing="elapsed",
        anchor_timezone=NEW_YORK,
    )

    doses = expand(schedule, NEW_YORK, date(2026, 10, 31), count=2)

    assert doses == [
        utc(2026, 10, 31, 10),
        utc(2026, 10, 31, 18),
        utc(2026, 11, 1, 2),
        utc(2026, 11, 1, 10),
        utc(2026, 11, 1, 18),
        utc(2026, 11, 2, 2),
    ]
    assert walls(doses, NEW_YORK)[3] == "11-01 05:00-0500"


# --- Travel ----------------------------------------------------------------------------------------------------


def test_travel_a_clock_plan_moves_to_0800_in_the_new_zone():
    schedule = Schedule(start_date=date(2026, 1, 1), times=(time(8),), anchor_timezone=NEW_YORK)
    start, end = utc(2026, 6, 1), utc(2026, 6, 2)

    at_home = occurrences(schedule, zone=NEW_YORK, start=start, end=end)
    in_london = occurrences(schedule, zone=LONDON, start=start, end=end)

    assert at_home == [utc(2026, 6, 1, 12)]
    assert in_london == [utc(2026, 6, 1, 7)]
    assert walls(in_london, LONDON) == ["06-01 08:00+0100"]


def test_travel_an_elapsed_plan_keeps_its_instants_whatever_the_zone():
    schedule = Schedule(
        start_date=date(2026, 1, 1), times=(time(8), time(20)), timing="elapsed", anchor_timezone=NEW_YORK
    )
    start, end = utc(2026, 6, 1), utc(2026, 6, 3)

    at_home = occurrences(schedule, zone=NEW_YORK, start=start, end=end)
    in_london = occurrences(schedule, zone=LONDON, start=start, end=end)

    assert at_home == in_london == [utc(2026, 6, 1, 1), utc(2026, 6, 1, 13), utc(2026, 6, 2, 1), utc(2026, 6, 2, 13)]


# --- Forms ----------------------------------------------------------------------------------------------------


def test_days_of_week_limits_times_to_those_weekdays():
    schedule = Schedule(start_date=date(2026, 1, 1), times=(time(9), time(21)), days_of_week=(0, 3))

    doses = expand(schedule, "UTC", date(2026, 3, 2), count=7)  # Monday 2 March to Sunday 8 March

    assert doses == [utc(2026, 3, 2, 9), utc(2026, 3, 2, 21), utc(2026, 3, 5, 9), utc(2026, 3, 5, 21)]


def test_rrule_weekly_monday_and_thursday_at_0900_with_byhour():
    schedule = Schedule(start_date=date(2026, 3, 1), rrule="FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=0")

    doses = expand(schedule, NEW_YORK, date(2026, 3, 1), count=14)

    assert doses == [utc(2026, 3, 2, 14), utc(2026, 3, 5, 14), utc(2026, 3, 9, 13), utc(2026, 3, 12, 13)]


def test_rrule_without_byhour_gives_every_time_on_each_date():
    schedule = Schedule(start_date=date(2026, 3, 1), times=(time(20), time(8)), rrule="FREQ=WEEKLY;BYDAY=SA")

    doses = expand(schedule, "UTC", date(2026, 3, 1), count=14)

    assert doses == [utc(2026, 3, 7, 8), utc(2026, 3, 7, 20), utc(2026, 3, 14, 8), utc(2026, 3, 14, 20)]


def test_rrule_without_times_or_byhour_doses_at_0800():
    schedule = Schedule(start_date=date(2026, 3, 1), rrule="FREQ=MONTHLY;BYMONTHDAY=1")

    doses = expand(schedule, "UTC", date(2026, 3, 1), count=62)

    assert doses == [utc(2026, 3, 1, 8), utc(2026, 4, 1, 8), utc(2026, 5, 1, 8)]


def test_rrule_count_counts_dates_each_with_all_its_times():
    schedule = Schedule(start_date=date(2026, 3, 1), times=(time(8), time(20)), rrule="FREQ=DAILY;COUNT=2")

    doses = expand(schedule, "UTC", date(2026, 2, 27), count=10)

    assert doses == [utc(2026, 3, 1, 8), utc(2026, 3, 1, 20), utc(2026, 3, 2, 8), utc(2026, 3, 2, 20)]


def test_rrule_count_is_honoured_in_a_window_far_after_the_start():
    schedule = Schedule(start_date=date(2026, 3, 1), rrule="FREQ=DAILY;COUNT=3")

    assert expand(schedule, "UTC", date(2026, 3, 3), count=10) == [utc(2026, 3, 3, 8)]
    assert expand(schedule, "UTC", date(2026, 3, 4), count=10) == []


def test_rrule_date_only_until_includes_that_days_doses():
    schedule = Schedule(start_date=date(2026, 3, 1), rrule="FREQ=DAILY;UNTIL=20260303")

    assert expand(schedule, "UTC", date(2026, 2, 27), count=10) == [
        utc(2026, 3, 1, 8),
        utc(2026, 3, 2, 8),
        utc(2026, 3, 3, 8),
    ]


def test_rrule_local_date_time_until_is_a_wall_time_limit():
    schedule = Schedule(start_date=date(2026, 3, 1), rrule="FREQ=DAILY;UNTIL=20260303T070000")

    assert expand(schedule, NEW_YORK, date(2026, 2, 27), count=10) == [utc(2026, 3, 1, 13), utc(2026, 3, 2, 13)]


def test_interval_without_times_starts_at_0800_on_the_start_date():
    schedule = Schedule(start_date=date(2026, 3, 1), interval_hours=10)

    doses = expand(schedule, "UTC", date(2026, 2, 28), count=3)

    assert doses == [utc(2026, 3, 1, 8), utc(2026, 3, 1, 18), utc(2026, 3, 2, 4), utc(2026, 3, 2, 14)]


def test_interval_longer_than_a_day_keeps_its_phase_in_a_late_window():
    schedule = Schedule(start_date=date(2026, 1, 1), times=(time(9),), interval_hours=72)

    doses = expand(schedule, "UTC", date(2026, 3, 1), count=7)  # day 59 from 1 January is 1 March: 59 % 3 == 2

    assert doses == [utc(2026, 3, 2, 9), utc(2026, 3, 5, 9)]


# --- Bounds ---------------------------------------------------------------------------------------------------


def test_start_and_end_dates_bound_the_doses_in_local_days():
    schedule = Schedule(start_date=date(2026, 3, 5), end_date=date(2026, 3, 6), times=(time(0, 30), time(23, 30)))

    doses = expand(schedule, AUCKLAND, date(2026, 3, 1), count=10)

    assert walls(doses, AUCKLAND) == ["03-05 00:30+1300", "03-05 23:30+1300", "03-06 00:30+1300", "03-06 23:30+1300"]


def test_elapsed_bounds_are_local_days_in_the_anchor_offset():
    schedule = Schedule(
        start_date=date(2026, 3, 5),
        end_date=date(2026, 3, 5),
        times=(time(23, 30),),
        timing="elapsed",
        anchor_timezone=NEW_YORK,
    )

    assert occurrences(schedule, zone=AUCKLAND, start=utc(2026, 3, 1), end=utc(2026, 3, 10)) == [utc(2026, 3, 6, 4, 30)]


def test_nothing_before_the_start_date_for_every_form():
    start, end = utc(2026, 2, 1), utc(2026, 3, 1)
    for schedule in (
        Schedule(start_date=date(2026, 3, 1), times=(time(8),)),
        Schedule(start_date=date(2026, 3, 1), interval_hours=1),
        Schedule(start_date=date(2026, 3, 1), rrule="FREQ=HOURLY"),
    ):
        assert occurrences(schedule, zone="UTC", start=start, end=end) == []
        assert occurrences(schedule, zone="UTC", start=start, end=end + timedelta(hours=9))[0] == utc(2026, 3, 1, 8)


def test_the_window_is_half_open_a_dose_at_start_is_in_and_one_at_end_is_out():
    schedule = Schedule(start_date=date(2026, 1, 1), times=(time(8),))

    assert occurrences(schedule, zone="UTC", start=utc(2026, 3, 1, 8), end=utc(2026, 3, 2, 8)) == [utc(2026, 3, 1, 8)]


def test_an_empty_or_reversed_window_has_no_doses():
    schedule = Schedule(start_date=date(2026, 1, 1), times=(time(8),))

    assert occurrences(schedule, zone="UTC", start=utc(2026, 3, 2), end=utc(2026, 3, 2)) == []
    assert occurrences(schedule, zone="UTC", start=utc(2026, 3, 2), end=utc(2026, 3, 1)) == []


def test_a_naive_window_is_a_programming_error():
    with pytest.raises(ValueError, match="aware"):
        occurrences(
            Schedule(start_date=date(2026, 1, 1), times=(time(8),)),
            zone="UTC",
            start=datetime(2026, 3, 1),  # noqa: DTZ001
            end=utc(2026, 3, 2),
        )


def test_an_unbounded_hourly_rule_expands_only_the_window():
    schedule = Schedule(start_date=date(2026, 1, 1), rrule="FREQ=HOURLY;INTERVAL=6", times=(time(0),))

    doses = occurrences(schedule, zone="UTC", start=utc(2026, 6, 1), end=utc(2026, 6, 2))

    assert doses == [utc(2026, 6, 1, 0), utc(2026, 6, 1, 6), utc(2026, 6, 1, 12), utc(2026, 6, 1, 18)]


def test_local_date_of_an_instant_is_its_calendar_date_in_the_zone():
    assert local_date_of(utc(2026, 3, 8, 3), NEW_YORK) == date(2026, 3, 7)
    assert local_date_of(utc(2026, 3, 8, 12), AUCKLAND) == date(2026, 3, 9)
    assert local_date_of(utc(2026, 3, 8, 3), "UTC") == date(2026, 3, 8)


# --- parse_times -----------------------------------------------------------------------------------------------


def test_parse_times_accepts_one_or_two_digit_hours_and_sorts_without_repeats():
    assert parse_times(["20:30", "8:00", "08:00", "00:00", "23:59"]) == (time(0), time(8), time(20, 30), time(23, 59))
    assert parse_times([]) == ()


@pytest.mark.parametrize("bad", ["24:00", "8", "08:60", "08:00:00", " 08:00", "8h", "", 800, None])
def test_parse_times_refuses_anything_but_hh_mm(bad):
    with pytest.raises(ScheduleError) as refused:
        parse_times(["08:00", bad])
    assert refused.value.field == "times"
    assert "HH:MM" in str(refused.value)


def test_parse_times_refuses_a_string_and_more_than_24_times():
    with pytest.raises(ScheduleError, match="list"):
        parse_times("08:00")
    with pytest.raises(ScheduleError, match="At most 24"):
        parse_times([f"{hour}:{minute}" for hour in range(13) for minute in ("00", "30")])


# --- validate --------------------------------------------------------------------------------------------------

D = date(2026, 3, 1)
INVALID = [
    pytest.param(Schedule(start_date=D), "times", "at least one time", id="nothing"),
    pytest.param(Schedule(start_date=D, times=(time(8),), timing="lunar"), "timing", "clock, elapsed", id="timing"),
    pytest.param(
        Schedule(start_date=D, times=(time(8),), anchor_timezone="Mars/Olympus"),
        "anchor_timezone",
        "timezone",
        id="zone",
    ),
    pytest.param(Schedule(start_date=D, end_date=date(2026, 2, 28), times=(time(8),)), "end_date", "before", id="end"),
    pytest.param(
        Schedule(start_date=D, times=tuple(time(h) for h in range(24)) + (time(0, 30),)),
        "times",
        "At most 24",
        id="25-times",
    ),
    pytest.param(Schedule(start_date=D, times=(time(8), time(8))), "times", "twice", id="repeat-time"),
    pytest.param(
        Schedule(start_date=D, interval_hours=8, rrule="FREQ=DAILY"), "rrule", "not both", id="interval+rrule"
    ),
    pytest.param(
        Schedule(start_date=D, interval_hours=8, days_of_week=(0,)), "days_of_week", "plain times", id="interval+days"
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=DAILY", days_of_week=(0,)), "days_of_week", "BYDAY", id="rrule+days"
    ),
    pytest.param(Schedule(start_date=D, times=(time(8),), days_of_week=(7,)), "days_of_week", "0 (Monday)", id="day-7"),
    pytest.param(
        Schedule(start_date=D, times=(time(8),), days_of_week=(1, 1)), "days_of_week", "twice", id="repeat-day"
    ),
    pytest.param(Schedule(start_date=D, interval_hours=0), "interval_hours", "1 to 672", id="interval-0"),
    pytest.param(Schedule(start_date=D, interval_hours=673), "interval_hours", "1 to 672", id="interval-673"),
    pytest.param(
        Schedule(start_date=D, interval_hours=8, times=(time(8), time(16))),
        "times",
        "at most one time",
        id="interval-2-times",
    ),
    pytest.param(Schedule(start_date=D, rrule="FREQ=FORTNIGHTLY"), "rrule", "needs FREQ", id="rrule-freq"),
    pytest.param(Schedule(start_date=D, rrule="BYDAY=MO"), "rrule", "needs FREQ", id="rrule-no-freq"),
    pytest.param(Schedule(start_date=D, rrule="FREQ=DAILY;;"), "rrule", "NAME=VALUE", id="rrule-syntax"),
    pytest.param(Schedule(start_date=D, rrule="FREQ=DAILY;BYHOUR=25"), "rrule", "not valid", id="rrule-byhour"),
    pytest.param(
        Schedule(start_date=D, rrule="DTSTART:20260301T080000\nRRULE:FREQ=DAILY"),
        "rrule",
        "one RRULE",
        id="rrule-lines",
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=DAILY;DTSTART=20260301T080000"), "rrule", "DTSTART", id="rrule-dtstart"
    ),
    pytest.param(Schedule(start_date=D, rrule="FREQ=DAILY;COUNT=1001"), "rrule", "COUNT must be", id="count-1001"),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=DAILY;INTERVAL=0"), "rrule", "INTERVAL must be", id="rrule-interval-0"
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=DAILY;UNTIL=20260228"),
        "rrule",
        "no dose in the four years",
        id="until-early",
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=HOURLY;INTERVAL=168;BYDAY=TU"),  # 1 March 2026 is a Sunday
        "rrule",
        "no dose in the four years",
        id="never",
    ),
    pytest.param(Schedule(start_date=D, rrule="FREQ=SECONDLY"), "rrule", "SECONDLY", id="secondly"),
    pytest.param(Schedule(start_date=D, rrule="FREQ=MINUTELY;INTERVAL=30"), "rrule", "MINUTELY", id="minutely"),
    pytest.param(Schedule(start_date=D, rrule="FREQ=HOURLY;BYMINUTE=0,20,40"), "rrule", "72 doses", id="storm-hourly"),
    pytest.param(
        Schedule(
            start_date=D,
            rrule="FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,20,40",
        ),
        "rrule",
        "72 doses",
        id="storm-daily",
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=DAILY;UNTIL=20261231T000000Z"), "rrule", "without Z", id="until-utc"
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"), "rrule", "name no date", id="30-february"
    ),
    pytest.param(Schedule(start_date=D, rrule="FREQ=MONTHLY;BYDAY=6MO"), "rrule", "names no date", id="6th-monday"),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=DAILY;INTERVAL=7;BYDAY=TU"), "rrule", "FREQ=WEEKLY", id="daily-7-byday"
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=YEARLY;BYYEARDAY=100"),
        "rrule",
        "Unsupported RRULE part BYYEARDAY",
        id="byyearday",
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1"),
        "rrule",
        "Unsupported RRULE part BYSETPOS",
        id="bysetpos",
    ),
    pytest.param(
        Schedule(start_date=D, rrule="FREQ=WEEKLY;BYHOUR=9", times=(time(9), time(21))),
        "times",
        "at most one time",
        id="byhour+times",
    ),
]


@pytest.mark.parametrize(("schedule", "field", "message"), INVALID)
def test_validate_refuses_a_bad_schedule_naming_the_field(schedule, field, message):
    with pytest.raises(ScheduleError) as refused:
        validate(schedule)
    assert refused.value.field == field
    assert message in str(refused.value)


VALID = [
    pytest.param(Schedule(start_date=D, times=(time(8),)), id="times"),
    pytest.param(Schedule(start_date=D, times=(time(8),), days_of_week=(0, 6)), id="days"),
    pytest.param(Schedule(start_date=D, interval_hours=1), id="interval-1"),
    pytest.param(Schedule(start_date=D, interval_hours=672, times=(time(21),)), id="interval-672"),
    pytest.param(Schedule(start_date=D, rrule="RRULE:FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=9;BYMINUTE=0"), id="rrule-prefix"),
    pytest.param(Schedule(start_date=D, rrule="FREQ=HOURLY;BYMINUTE=0,30"), id="48-a-day"),
    pytest.param(Schedule(start_date=D, rrule="FREQ=DAILY", times=tuple(time(h) for h in range(24))), id="24-times"),
    pytest.param(Schedule(start_date=D, rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"), id="leap-day"),
    pytest.param(
        Schedule(start_date=D, end_date=D, times=(time(8),), timing="elapsed", anchor_timezone=AUCKLAND), id="elapsed"
    ),
]


@pytest.mark.parametrize("schedule", VALID)
def test_validate_accepts_each_form(schedule):
    assert validate(schedule) is None


def test_schedule_error_is_a_value_error_with_its_message():
    error = ScheduleError("Bad.", field="times")
    assert isinstance(error, ValueError)
    assert (error.message, error.field, str(error)) == ("Bad.", "times", "Bad.")


# --- Properties ------------------------------------------------------------------------------------------------

ZONES = [NEW_YORK, AUCKLAND, LONDON, "UTC", "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago"]


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    anchor=st.sampled_from(ZONES),
    timing=st.sampled_from(["clock", "elapsed"]),
    times=st.lists(st.times().map(lambda t: t.replace(second=0, microsecond=0)), min_size=1, max_size=6, unique=True),
    days_of_week=st.lists(st.integers(0, 6), max_size=7, unique=True),
    start_date=st.dates(date(2025, 12, 1), date(2027, 1, 31)),
    offset_hours=st.integers(-24 * 40, 24 * 40),
    length_hours=st.integers(0, 24 * 10),
)
def test_occurrences_are_sorted_unique_inside_the_window_and_at_most_the_times_per_local_day(
    zone, anchor, timing, times, days_of_week, start_date, offset_hours, length_hours
):
    schedule = Schedule(
        start_date=start_date,
        times=tuple(sorted(times)),
        days_of_week=tuple(days_of_week),
        timing=timing,
        anchor_timezone=anchor,
    )
    validate(schedule)
    start = datetime.combine(start_date, time(), tzinfo=UTC) + timedelta(hours=offset_hours)
    end = start + timedelta(hours=length_hours)

    doses = occurrences(schedule, zone=zone, start=start, end=end)

    assert doses == sorted(set(doses))
    assert all(start <= dose < end and dose.tzinfo is UTC for dose in doses)
    # Local days are the mode's: the patient's zone for clock timing, the anchor's first offset for elapsed.
    if timing == "clock":
        local = ZoneInfo(zone)
    else:
        local = timezone(datetime.combine(start_date, min(times), tzinfo=ZoneInfo(anchor)).utcoffset())
    per_day = {}
    for dose in doses:
        day = dose.astimezone(local).date()
        per_day[day] = per_day.get(day, 0) + 1
        assert day >= start_date
    assert max(per_day.values(), default=0) <= len(times)


RULES = [
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
    "FREQ=WEEKLY;WKST=SU;INTERVAL=2;BYDAY=SU,SA",
    "FREQ=WEEKLY;BYDAY=SU;BYHOUR=9,21;BYMINUTE=15",
    "FREQ=MONTHLY;INTERVAL=5",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=31",
    "FREQ=MONTHLY;BYMONTH=1,7",
    "FREQ=YEARLY;INTERVAL=3",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYDAY=20MO",
    "FREQ=HOURLY;INTERVAL=7",
    "FREQ=HOURLY;INTERVAL=5;BYHOUR=1,9,17",
    "FREQ=DAILY;UNTIL=20280101T000000",
]


@settings(max_examples=300, deadline=None)
@given(
    rule=st.sampled_from(RULES),
    start_date=st.dates(date(2019, 1, 1), date(2026, 12, 31)),
    first=st.sampled_from([time(0), time(8), time(23, 45)]),
    window_start=st.datetimes(datetime(2026, 1, 1), datetime(2029, 12, 31)),  # noqa: DTZ001 (naive, as dateutil wants)
    length_days=st.integers(1, 60),
)
def test_a_rule_started_long_ago_expands_to_what_dateutil_gives_from_its_real_start(
    rule, start_date, first, window_start, length_days
):
    schedule = Schedule(start_date=start_date, times=(first,), rrule=rule)
    validate(schedule)
    start = window_start.replace(tzinfo=UTC)
    end = start + timedelta(days=length_days)

    doses = occurrences(schedule, zone="UTC", start=start, end=end)

    full = rrulestr(rule, dtstart=schedule.first_dose)  # walks every period from the real start
    walls = full.between(window_start, window_start + timedelta(days=length_days), inc=True)
    assert doses == [moment for moment in (wall.replace(tzinfo=UTC) for wall in walls) if moment < end]
