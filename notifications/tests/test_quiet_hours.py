"""Quiet hours, a pure function: across midnight, and across both DST changes in three zones."""

from datetime import UTC, date, datetime, time

import pytest

from notifications.quiet import quiet_until, wall_clock

NIGHT = (time(22), time(7))


def at(zone: str, *args: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "now", "ends"),
    [
        # Across midnight: before it, after it, and outside.
        ("Europe/London", (2026, 6, 1, 23, 30), (2026, 6, 2, 7, 0)),
        ("Europe/London", (2026, 6, 2, 3, 0), (2026, 6, 2, 7, 0)),
        ("Europe/London", (2026, 6, 2, 12, 0), None),
        # The night the clocks go forward: the window still ends at 07:00 on the wall clock.
        ("America/New_York", (2026, 3, 7, 23, 0), (2026, 3, 8, 7, 0)),
        ("Europe/London", (2026, 3, 29, 0, 30), (2026, 3, 29, 7, 0)),
        ("Pacific/Auckland", (2026, 9, 26, 23, 0), (2026, 9, 27, 7, 0)),
        # The night they go back.
        ("America/New_York", (2026, 10, 31, 23, 0), (2026, 11, 1, 7, 0)),
        ("Europe/London", (2026, 10, 25, 5, 0), (2026, 10, 25, 7, 0)),
        ("Pacific/Auckland", (2026, 4, 5, 1, 0), (2026, 4, 5, 7, 0)),
    ],
)
def test_the_window_ends_at_its_local_end_time(zone, now, ends):
    from zoneinfo import ZoneInfo

    result = quiet_until(at(zone, *now), ZoneInfo(zone), *NIGHT)

    assert result == (None if ends is None else at(zone, *ends))


def test_a_window_within_one_day():
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/London")
    assert quiet_until(at("Europe/London", 2026, 6, 1, 13, 0), zone, time(12), time(14)) == at(
        "Europe/London", 2026, 6, 1, 14, 0
    )
    assert quiet_until(at("Europe/London", 2026, 6, 1, 14, 0), zone, time(12), time(14)) is None


def test_an_end_in_the_skipped_hour_ends_when_the_clocks_jump():
    from zoneinfo import ZoneInfo

    # New York skips 02:00-03:00 on 2026-03-08: a window ending 02:30 ends at 03:00 EDT (07:00 UTC).
    assert wall_clock(date(2026, 3, 8), time(2, 30), ZoneInfo("America/New_York")) == datetime(
        2026, 3, 8, 7, tzinfo=UTC
    )


def test_an_end_that_happens_twice_ends_the_first_time():
    from zoneinfo import ZoneInfo

    # 01:30 happens twice in New York on 2026-11-01: first at 05:30 UTC (EDT).
    assert wall_clock(date(2026, 11, 1), time(1, 30), ZoneInfo("America/New_York")) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )
