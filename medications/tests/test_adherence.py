"""Adherence from hand-made dose histories: the counts, the proportion of days covered, and the overall figure.

The pure core needs no database.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from medications.adherence import PDC_THRESHOLD, Adherence, DoseEntry, overall_adherence, plan_adherence

START = date(2026, 3, 1)
END = date(2026, 3, 10)  # ten days


def day(n: int) -> date:
    """Day n of the period (1 is START)."""
    return START + timedelta(days=n - 1)


def daily(statuses: str, *, plan: str = "a", first: int = 1) -> list[DoseEntry]:
    """One dose a day from day `first`: T taken, L taken late, M missed, S skipped, P pending."""
    codes = {"T": "taken", "L": "taken", "M": "missed", "S": "skipped", "P": "scheduled"}
    return [DoseEntry(plan, day(first + i), codes[code], late=code == "L") for i, code in enumerate(statuses)]


def test_all_taken_is_fully_covered():
    result = plan_adherence(daily("T" * 10), start=START, end=END)
    assert result == Adherence(
        taken=10,
        late=0,
        missed=0,
        skipped=0,
        pending=0,
        as_needed=0,
        days_covered=10,
        days_in_period=10,
        pdc=1.0,
        adherent=True,
        first_dose_date=START,
    )


def test_one_missed_day_of_ten_is_adherent():
    result = plan_adherence(daily("TTTTMTTTTT"), start=START, end=END)
    assert (result.taken, result.missed, result.days_covered, result.days_in_period) == (9, 1, 9, 10)
    assert result.pdc == 0.9
    assert result.adherent is True


def test_three_missed_days_of_ten_is_not_adherent():
    result = plan_adherence(daily("TMTTMTTMTT"), start=START, end=END)
    assert (result.missed, result.days_covered, result.pdc, result.adherent) == (3, 7, 0.7, False)


def test_the_threshold_itself_is_adherent():
    result = plan_adherence(daily("TTMTTTTTMT"), start=START, end=END)
    assert result.pdc == PDC_THRESHOLD == 0.8
    assert result.adherent is True


def test_late_doses_cover_their_day_and_are_counted_as_late():
    result = plan_adherence(daily("TLTTLTTTTT"), start=START, end=END)
    assert (result.taken, result.late, result.days_covered, result.pdc) == (10, 2, 10, 1.0)


def test_a_skipped_dose_uncovers_its_day():
    result = plan_adherence(daily("TTSTTTTTTT"), start=START, end=END)
    assert (result.taken, result.skipped, result.days_covered, result.days_in_period, result.pdc) == (9, 1, 9, 10, 0.9)


def test_twice_daily_with_one_of_two_missed_leaves_that_day_uncovered():
    entries = [*daily("T" * 10), *daily("TTTMTTTTTT")]
    result = plan_adherence(entries, start=START, end=END)
    assert (result.taken, result.missed, result.days_covered, result.days_in_period, result.pdc) == (19, 1, 9, 10, 0.9)


def test_a_taken_dose_with_a_pending_one_the_same_day_covers_it():
    entries = [*daily("TTTTTTTTTT"), DoseEntry("a", day(10), "scheduled")]
    result = plan_adherence(entries, start=START, end=END)
    assert (result.pending, result.days_covered, result.days_in_period, result.pdc) == (1, 10, 10, 1.0)


def test_weekly_dose_taken_covers_seven_days():
    entries = [DoseEntry("w", date(2026, 3, 2), "taken"), DoseEntry("w", date(2026, 3, 9), "taken")]
    result = plan_adherence(entries, start=date(2026, 3, 2), end=date(2026, 3, 15))
    assert (result.taken, result.days_covered, result.days_in_period, result.pdc) == (2, 14, 14, 1.0)


def test_a_missed_weekly_dose_uncovers_its_week():
    entries = [
        DoseEntry("w", date(2026, 3, 2), "taken"),
        DoseEntry("w", date(2026, 3, 9), "missed"),
        DoseEntry("w", date(2026, 3, 16), "taken"),
    ]
    result = plan_adherence(entries, start=date(2026, 3, 2), end=date(2026, 3, 22))
    assert (result.taken, result.missed, result.days_covered, result.days_in_period) == (2, 1, 14, 21)
    assert result.pdc == 0.6667
    assert result.adherent is False


def test_pending_doses_today_leave_the_period():
    result = plan_adherence(daily("TTTTTTTTMP"), start=START, end=END)
    assert (result.pending, result.days_covered, result.days_in_period, result.pdc) == (1, 8, 9, 0.8889)


def test_days_after_a_pending_weekly_dose_leave_the_period_too():
    entries = [DoseEntry("w", date(2026, 3, 2), "taken"), DoseEntry("w", date(2026, 3, 9), "scheduled")]
    result = plan_adherence(entries, start=date(2026, 3, 2), end=date(2026, 3, 12))
    assert (result.pending, result.days_covered, result.days_in_period, result.pdc) == (1, 7, 7, 1.0)


def test_a_first_dose_after_start_shortens_the_period():
    result = plan_adherence(daily("TTMTT", first=6), start=START, end=END)
    assert result.first_dose_date == day(6)
    assert (result.days_covered, result.days_in_period, result.pdc, result.adherent) == (4, 5, 0.8, True)


def test_as_needed_only_has_no_pdc_but_counts_its_doses():
    entries = [DoseEntry("prn", day(2), "taken", as_needed=True), DoseEntry("prn", day(5), "taken", as_needed=True)]
    result = plan_adherence(entries, start=START, end=END)
    assert result == Adherence(
        taken=0,
        late=0,
        missed=0,
        skipped=0,
        pending=0,
        as_needed=2,
        days_covered=0,
        days_in_period=0,
        pdc=None,
        adherent=None,
        first_dose_date=None,
    )


def test_as_needed_doses_beside_a_schedule_do_not_change_its_pdc():
    scheduled = daily("TTTMTTTTTT")
    prn = [DoseEntry("a", day(4), "taken", as_needed=True), DoseEntry("a", day(11), "taken", as_needed=True)]
    alone = plan_adherence(scheduled, start=START, end=END)
    both = plan_adherence([*scheduled, *prn], start=START, end=END)
    assert (both.taken, both.as_needed, both.days_covered, both.days_in_period, both.pdc) == (9, 1, 9, 10, 0.9)
    assert (alone.days_covered, alone.days_in_period, alone.pdc) == (both.days_covered, both.days_in_period, both.pdc)


def test_overall_day_is_uncovered_when_one_plan_misses_it():
    entries = [*daily("T" * 10, plan="a"), *daily("TTTTTMTTTT", plan="b")]
    result = overall_adherence(entries, start=START, end=END)
    assert (result.taken, result.missed, result.days_covered, result.days_in_period) == (19, 1, 9, 10)
    assert (result.pdc, result.adherent, result.first_dose_date) == (0.9, True, START)


def test_overall_period_is_the_union_of_the_plans_periods():
    entries = [*daily("TTTTT", plan="a"), *daily("TTMTT", plan="b", first=6)]
    result = overall_adherence(entries, start=START, end=END, plan_ends={"a": day(5)})
    assert (result.days_covered, result.days_in_period, result.pdc) == (9, 10, 0.9)


def test_overall_ignores_as_needed_plans_in_the_pdc():
    entries = [*daily("TTTTTTTTTM", plan="a"), DoseEntry("prn", day(3), "taken", as_needed=True)]
    result = overall_adherence(entries, start=START, end=END)
    assert (result.taken, result.as_needed, result.days_covered, result.days_in_period, result.pdc) == (
        9,
        1,
        9,
        10,
        0.9,
    )


def test_a_dose_before_start_carries_its_coverage_forward():
    entries = [DoseEntry("w", date(2026, 2, 26), "taken"), DoseEntry("w", date(2026, 3, 5), "missed")]
    result = plan_adherence(entries, start=START, end=date(2026, 3, 7))
    # 1-4 March carried from 26 February (taken), 5-7 March from the missed dose; only the missed one is counted.
    assert (result.taken, result.missed, result.days_covered, result.days_in_period, result.pdc) == (0, 1, 4, 7, 0.5714)
    assert result.first_dose_date == date(2026, 2, 26)


def test_a_missed_dose_before_start_carries_as_uncovered():
    entries = [DoseEntry("w", date(2026, 2, 26), "missed"), DoseEntry("w", date(2026, 3, 5), "taken")]
    result = plan_adherence(entries, start=START, end=date(2026, 3, 7))
    assert (result.days_covered, result.days_in_period, result.pdc) == (3, 7, 0.4286)


def test_a_plans_end_stops_the_carry_forward():
    entries = daily("TTM")
    assert plan_adherence(entries, start=START, end=END).days_in_period == 10
    result = overall_adherence(entries, start=START, end=END, plan_ends={"a": day(3)})
    assert (result.days_covered, result.days_in_period, result.pdc) == (2, 3, 0.6667)


@pytest.mark.parametrize("function", [plan_adherence, overall_adherence])
def test_no_entries_gives_zeros_and_no_pdc(function):
    result = function([], start=START, end=END)
    assert result.as_dict() == {
        "taken": 0,
        "late": 0,
        "missed": 0,
        "skipped": 0,
        "pending": 0,
        "as_needed": 0,
        "days_covered": 0,
        "days_in_period": 0,
        "pdc": None,
        "adherent": None,
        "first_dose_date": None,
    }


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="Unknown dose status 'lost'"):
        DoseEntry("a", START, "lost")
