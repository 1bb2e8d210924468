"""The pure availability function, on hand-made data (no database): rules, and both 2026 DST changes in three zones.

2026 changes: New York 8 March (02:00 → 03:00) and 1 November (02:00 → 01:00); London 29 March (01:00 → 02:00)
and 25 October (02:00 → 01:00); Auckland 5 April (03:00 → 02:00) and 27 September (02:00 → 03:00).
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from appointments.availability import (
    EXTRA,
    UNAVAILABLE,
    Override,
    Rules,
    Window,
    free_slots,
    slot_problem,
    working_time,
)

NEW_YORK, LONDON, AUCKLAND = ZoneInfo("America/New_York"), ZoneInfo("Europe/London"), ZoneInfo("Pacific/Auckland")
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)  # `now` far before the days asked: notice and horizon play no part
NO_LIMITS = {"minimum_notice": timedelta(0), "horizon": timedelta(days=3650)}

# (zone, the day of the change, the day before): spring forward then fall back, per zone.
CHANGES = [
    pytest.param(NEW_YORK, date(2026, 3, 8), id="new_york-spring"),
    pytest.param(NEW_YORK, date(2026, 11, 1), id="new_york-autumn"),
    pytest.param(LONDON, date(2026, 3, 29), id="london-spring"),
    pytest.param(LONDON, date(2026, 10, 25), id="london-autumn"),
    pytest.param(AUCKLAND, date(2026, 9, 27), id="auckland-spring"),
    pytest.param(AUCKLAND, date(2026, 4, 5), id="auckland-autumn"),
]


def every_day(start: time, end: time) -> list[Window]:
    return [Window(day, start, end) for day in range(7)]


def slots(zone, day, hours, *, overrides=(), blocked=(), now=LONG_AGO, end_date=None, **rules):  # noqa: ANN001
    rules = {"duration": timedelta(minutes=30), "interval": timedelta(minutes=30), **NO_LIMITS, **rules}
    return free_slots(
        zone=zone,
        hours=hours,
        overrides=list(overrides),
        blocked=list(blocked),
        rules=Rules(**rules),
        now=now,
        start_date=day,
        end_date=end_date or day,
    )


def wall(instants: list[datetime], zone: ZoneInfo) -> list[str]:
    return [moment.astimezone(zone).strftime("%H:%M%z") for moment in instants]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Daytime hours keep their wall times across every change ----------------------------------------------------


@pytest.mark.parametrize(("zone", "day"), CHANGES)
def test_daytime_slots_keep_their_wall_times_on_the_day_of_a_change_and_move_in_utc(zone, day):
    hours = every_day(time(9), time(11))
    before, on, after = (slots(zone, day + timedelta(days=d), hours) for d in (-1, 0, 1))

    expected = ["09:00", "09:30", "10:00", "10:30"]
    assert [moment.astimezone(zone).strftime("%H:%M") for moment in before] == expected
    assert [moment.astimezone(zone).strftime("%H:%M") for moment in on] == expected
    assert [moment.astimezone(zone).strftime("%H:%M") for moment in after] == expected
    shift = before[0].astimezone(zone).utcoffset() - after[0].astimezone(zone).utcoffset()
    assert abs(shift) == timedelta(hours=1)
    assert after[0] - before[0] == timedelta(days=2) + shift  # a day is 23 or 25 hours long across the change
    assert all(moment.tzinfo is UTC for moment in on)


# --- Windows that span the change: as long as the clock says in real time ----------------------------------------


def test_new_york_spring_a_window_across_the_gap_is_one_hour_shorter():
    found = slots(
        NEW_YORK,
        date(2026, 3, 8),
        every_day(time(1), time(4)),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
    )
    assert found == [utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)]
    assert wall(found, NEW_YORK) == ["01:00-0500", "03:00-0400"]


def test_new_york_spring_a_window_starting_in_the_gap_starts_the_gap_later():
    # 02:30 does not exist that day: read with the offset before the change, it is 03:30 EDT.
    found = slots(NEW_YORK, date(2026, 3, 8), every_day(time(2, 30), time(5)))
    assert wall(found, NEW_YORK) == ["03:30-0400", "04:00-0400", "04:30-0400"]


def test_new_york_autumn_the_repeated_hour_is_offered_twice():
    found = slots(
        NEW_YORK,
        date(2026, 11, 1),
        every_day(time(0), time(3)),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
    )
    assert found == [utc(2026, 11, 1, 4), utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)]
    assert wall(found, NEW_YORK) == ["00:00-0400", "01:00-0400", "01:00-0500", "02:00-0500"]


def test_new_york_autumn_an_ambiguous_start_is_its_first_occurrence():
    window = working_time(day=date(2026, 11, 1), zone=NEW_YORK, hours=every_day(time(1, 30), time(2, 30)), overrides=[])
    assert window == [(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7, 30))]  # 01:30 EDT to 02:30 EST: two hours


def test_london_spring_the_gap_hour_has_no_slots():
    found = slots(LONDON, date(2026, 3, 29), every_day(time(0, 30), time(3)))
    assert wall(found, LONDON) == ["00:30+0000", "02:00+0100", "02:30+0100"]


def test_london_autumn_a_window_across_the_change_is_one_hour_longer():
    window = working_time(day=date(2026, 10, 25), zone=LONDON, hours=every_day(time(0), time(3)), overrides=[])
    assert window == [(utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))]


def test_auckland_autumn_a_window_across_the_change_is_one_hour_longer():
    window = working_time(day=date(2026, 4, 5), zone=AUCKLAND, hours=every_day(time(1), time(4)), overrides=[])
    assert window == [(utc(2026, 4, 4, 12), utc(2026, 4, 4, 16))]
    found = slots(
        AUCKLAND,
        date(2026, 4, 5),
        every_day(time(1), time(4)),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
    )
    assert wall(found, AUCKLAND) == ["01:00+1300", "02:00+1300", "02:00+1200", "03:00+1200"]


def test_auckland_spring_a_window_across_the_gap_is_one_hour_shorter():
    window = working_time(day=date(2026, 9, 27), zone=AUCKLAND, hours=every_day(time(1), time(4)), overrides=[])
    assert window == [(utc(2026, 9, 26, 13), utc(2026, 9, 26, 15))]


def test_auckland_local_days_begin_the_utc_day_before():
    found = slots(AUCKLAND, date(2026, 6, 15), every_day(time(9), time(10)))
    assert found == [utc(2026, 6, 14, 21), utc(2026, 6, 14, 21, 30)]


# --- Rules -------------------------------------------------------------------------------------------------------


def test_a_slot_must_fit_wholly_inside_working_time():
    found = slots(LONDON, date(2026, 6, 15), every_day(time(9), time(10, 10)), interval=timedelta(minutes=15))
    assert wall(found, LONDON) == ["09:00+0100", "09:15+0100", "09:30+0100"]


def test_several_windows_a_day_and_the_weekday_matters():
    hours = [Window(0, time(9), time(10)), Window(0, time(14), time(15)), Window(1, time(11), time(12))]
    monday = slots(LONDON, date(2026, 6, 15), hours, interval=timedelta(minutes=30))
    assert wall(monday, LONDON) == ["09:00+0100", "09:30+0100", "14:00+0100", "14:30+0100"]
    sunday = slots(LONDON, date(2026, 6, 14), hours)
    assert sunday == []


def test_a_whole_day_off_closes_the_day_but_extra_hours_that_day_still_count():
    day = date(2026, 6, 15)
    hours = every_day(time(9), time(17))
    assert slots(LONDON, day, hours, overrides=[Override(day, UNAVAILABLE)]) == []
    extra = Override(day, EXTRA, time(18), time(19))
    found = slots(LONDON, day, hours, overrides=[Override(day, UNAVAILABLE), extra], interval=timedelta(minutes=30))
    assert wall(found, LONDON) == ["18:00+0100", "18:30+0100"]


def test_a_partial_unavailability_cuts_the_window_and_extra_hours_extend_it():
    day = date(2026, 6, 15)
    overrides = [Override(day, UNAVAILABLE, time(9, 30), time(10)), Override(day, EXTRA, time(10, 30), time(11))]
    found = slots(LONDON, day, every_day(time(9), time(10, 30)), overrides=overrides, interval=timedelta(minutes=30))
    assert wall(found, LONDON) == ["09:00+0100", "10:00+0100", "10:30+0100"]


def test_an_override_of_another_date_changes_nothing():
    day = date(2026, 6, 15)
    found = slots(LONDON, day, every_day(time(9), time(10)), overrides=[Override(day + timedelta(days=1), UNAVAILABLE)])
    assert len(found) == 2


def test_minimum_notice_and_horizon():
    day = date(2026, 6, 15)
    now = utc(2026, 6, 15, 7)  # 08:00 in London
    found = slots(LONDON, day, every_day(time(9), time(12)), now=now, minimum_notice=timedelta(hours=2))
    assert wall(found, LONDON)[0] == "10:00+0100"
    assert (
        slots(LONDON, day + timedelta(days=3), every_day(time(9), time(12)), now=now, horizon=timedelta(days=2)) == []
    )
    edge = slots(
        LONDON,
        day + timedelta(days=1),
        every_day(time(9), time(12)),
        now=now,
        horizon=timedelta(days=1, hours=2),
        interval=timedelta(minutes=15),
    )
    assert wall(edge, LONDON) == ["09:00+0100", "09:15+0100", "09:30+0100", "09:45+0100"]  # before now + horizon


def test_the_local_days_asked_are_all_included():
    found = slots(LONDON, date(2026, 6, 15), every_day(time(9), time(9, 30)), end_date=date(2026, 6, 17))
    assert [moment.date() for moment in found] == [date(2026, 6, 15), date(2026, 6, 16), date(2026, 6, 17)]


def test_a_booked_range_removes_overlapping_slots_and_back_to_back_slots_stay():
    day = date(2026, 6, 15)
    booked = (utc(2026, 6, 15, 9), utc(2026, 6, 15, 9, 30))  # 10:00-10:30 London
    found = slots(LONDON, day, every_day(time(9), time(11)), blocked=[booked], interval=timedelta(minutes=30))
    assert wall(found, LONDON) == ["09:00+0100", "09:30+0100", "10:30+0100"]


def test_buffers_keep_a_slot_away_from_a_booked_range_but_may_lie_outside_working_time():
    day = date(2026, 6, 15)
    booked = (utc(2026, 6, 15, 9), utc(2026, 6, 15, 9, 30))  # 10:00-10:30 London, its own buffers included
    found = slots(
        LONDON,
        day,
        every_day(time(9), time(11, 30)),
        blocked=[booked],
        interval=timedelta(minutes=15),
        buffer_before=timedelta(minutes=15),
        buffer_after=timedelta(minutes=15),
    )
    # 09:15 would hold 09:00-10:00 (touching 10:00: fine); 09:30 would reach 10:15; 10:45 starts the free time.
    assert wall(found, LONDON) == ["09:00+0100", "09:15+0100", "10:45+0100", "11:00+0100"]


# --- slot_problem: what booking checks before the database does -------------------------------------------------


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (utc(2026, 6, 15, 6), "in_the_past"),
        (utc(2026, 6, 15, 8), "inside_minimum_notice"),
        (utc(2026, 9, 15, 9), "beyond_horizon"),
        (utc(2026, 6, 16, 9, 5), "outside_availability"),  # off the 15-minute grid
        (utc(2026, 6, 16, 18), "outside_availability"),  # after hours
        (utc(2026, 6, 16, 9), None),
    ],
)
def test_slot_problem_names_why_a_start_cannot_be_booked(start, code):
    rules = Rules(duration=timedelta(minutes=30))
    problem = slot_problem(
        start=start, zone=LONDON, hours=every_day(time(9), time(17)), overrides=[], rules=rules, now=utc(2026, 6, 15, 7)
    )
    assert (problem[0] if problem else None) == code


def test_slot_problem_accepts_the_second_occurrence_of_a_repeated_hour():
    rules = Rules(duration=timedelta(hours=1), interval=timedelta(hours=1), minimum_notice=timedelta(0))
    second = utc(2026, 11, 1, 6)  # 01:00 EST
    problem = slot_problem(
        start=second, zone=NEW_YORK, hours=every_day(time(0), time(3)), overrides=[], rules=rules, now=utc(2026, 10, 30)
    )
    assert problem is None


def test_the_bisected_overlap_test_agrees_with_testing_every_booking():
    """free_slots tests a slot against merged, sorted bookings by bisection (a measured hot path)."""
    import random

    from appointments.availability import _Taken

    rng = random.Random(13)
    base = datetime(2026, 3, 2, tzinfo=UTC)
    for _ in range(200):
        taken = []
        for _ in range(rng.randrange(0, 12)):
            start = base + timedelta(minutes=5 * rng.randrange(0, 100))
            taken.append((start, start + timedelta(minutes=5 * rng.randrange(1, 12))))
        index = _Taken(taken)
        for _ in range(30):
            start = base + timedelta(minutes=5 * rng.randrange(-5, 110))
            blocked = (start, start + timedelta(minutes=5 * rng.randrange(1, 10)))
            brute = any(s < blocked[1] and blocked[0] < e for s, e in taken)
            assert index.overlaps(blocked) == brute, (taken, blocked)
