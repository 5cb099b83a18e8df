"""Period windows: inclusive ends, Monday-Sunday weeks, whole previous periods."""

from datetime import date

import pytest

from capacity.periods import Period, previous_window, window


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("day", date(2026, 3, 15), (date(2026, 3, 15), date(2026, 3, 15))),
        ("week", date(2026, 3, 15), (date(2026, 3, 9), date(2026, 3, 15))),  # a Sunday
        ("week", date(2026, 3, 16), (date(2026, 3, 16), date(2026, 3, 22))),  # a Monday
        ("week", date(2025, 12, 31), (date(2025, 12, 29), date(2026, 1, 4))),  # across years
        ("month", date(2026, 3, 15), (date(2026, 3, 1), date(2026, 3, 31))),
        ("month", date(2026, 4, 30), (date(2026, 4, 1), date(2026, 4, 30))),
        ("month", date(2026, 12, 1), (date(2026, 12, 1), date(2026, 12, 31))),
        ("month", date(2024, 2, 10), (date(2024, 2, 1), date(2024, 2, 29))),  # leap year
        ("month", date(2026, 2, 10), (date(2026, 2, 1), date(2026, 2, 28))),
        ("month", date(2100, 2, 10), (date(2100, 2, 1), date(2100, 2, 28))),  # not leap
        ("month", date(2000, 2, 10), (date(2000, 2, 1), date(2000, 2, 29))),  # leap
        ("quarter", date(2026, 1, 1), (date(2026, 1, 1), date(2026, 3, 31))),
        ("quarter", date(2026, 3, 31), (date(2026, 1, 1), date(2026, 3, 31))),
        ("quarter", date(2026, 4, 1), (date(2026, 4, 1), date(2026, 6, 30))),
        ("quarter", date(2026, 8, 15), (date(2026, 7, 1), date(2026, 9, 30))),
        ("quarter", date(2026, 12, 31), (date(2026, 10, 1), date(2026, 12, 31))),
        ("year", date(2026, 7, 4), (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_window(period, day, expected):
    assert window(period, day) == expected


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("day", date(2026, 3, 1), (date(2026, 2, 28), date(2026, 2, 28))),
        ("day", date(2024, 3, 1), (date(2024, 2, 29), date(2024, 2, 29))),
        ("day", date(2026, 1, 1), (date(2025, 12, 31), date(2025, 12, 31))),
        # Monday: the previous week is the whole week before, not the day before.
        ("week", date(2026, 3, 16), (date(2026, 3, 9), date(2026, 3, 15))),
        # Sunday belongs to the week that started six days earlier.
        ("week", date(2026, 3, 22), (date(2026, 3, 9), date(2026, 3, 15))),
        ("week", date(2026, 1, 1), (date(2025, 12, 22), date(2025, 12, 28))),
        ("month", date(2026, 3, 31), (date(2026, 2, 1), date(2026, 2, 28))),
        ("month", date(2024, 3, 1), (date(2024, 2, 1), date(2024, 2, 29))),
        ("month", date(2026, 1, 15), (date(2025, 12, 1), date(2025, 12, 31))),
        # The whole previous quarter, including its third month (predecessor FLAW 2).
        ("quarter", date(2026, 5, 20), (date(2026, 1, 1), date(2026, 3, 31))),
        ("quarter", date(2026, 7, 1), (date(2026, 4, 1), date(2026, 6, 30))),
        ("quarter", date(2026, 10, 1), (date(2026, 7, 1), date(2026, 9, 30))),
        ("quarter", date(2026, 2, 14), (date(2025, 10, 1), date(2025, 12, 31))),
        ("year", date(2026, 1, 1), (date(2025, 1, 1), date(2025, 12, 31))),
        ("year", date(2025, 3, 1), (date(2024, 1, 1), date(2024, 12, 31))),
    ],
)
def test_previous_window(period, day, expected):
    assert previous_window(period, day) == expected


@pytest.mark.parametrize("period", list(Period))
def test_every_window_contains_its_day_and_follows_its_previous_window(period):
    day = date(2024, 1, 1)
    while day.year < 2027:
        start, end = window(period, day)
        previous_start, previous_end = previous_window(period, day)
        assert start <= day <= end
        assert previous_start <= previous_end
        assert (start - previous_end).days == 1
        assert window(period, previous_start) == (previous_start, previous_end)
        day = date.fromordinal(day.toordinal() + 5)


def test_weeks_run_monday_to_sunday():
    start, end = window(Period.WEEK, date(2026, 6, 10))
    assert (start.isoweekday(), end.isoweekday()) == (1, 7)


def test_period_names_are_plain_strings():
    assert [str(p) for p in Period] == ["day", "week", "month", "quarter", "year"]
    assert window(Period.MONTH, date(2026, 6, 10)) == window("month", date(2026, 6, 10))


@pytest.mark.parametrize("period", ["fortnight", "", "Month", None])
def test_unknown_period_is_refused(period):
    with pytest.raises(ValueError, match="unknown period"):
        window(period, date(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown period"):
        previous_window(period, date(2026, 1, 1))
