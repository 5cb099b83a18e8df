"""Least-squares growth and the projected day a limit is reached (pure)."""

from datetime import date, timedelta

import pytest

from capacity.forecast import growth_per_day, projected_date

START = date(2024, 1, 1)
GIB = 1024**3


def line(days: int, *, start: int = 10 * GIB, per_day: int = 50 * 1024**2, every: int = 1):
    return [(START + timedelta(days=i), start + i * per_day) for i in range(0, days, every)]


def test_the_slope_of_linear_data_is_exact():
    assert growth_per_day(line(30)) == 50 * 1024**2
    assert growth_per_day(line(90, per_day=-7)) == -7
    assert growth_per_day(line(90, per_day=0)) == 0


def test_gaps_and_order_do_not_matter():
    points = line(60, every=7)
    assert growth_per_day(list(reversed(points))) == 50 * 1024**2


def test_least_squares_through_noisy_points():
    # x = 0, 1, 2, 3; y = 0, 2, 1, 3: slope = (4*13 - 6*6) / (4*14 - 36) = 16 / 20
    points = [(START + timedelta(days=x), y) for x, y in enumerate([0, 2, 1, 3])]
    assert growth_per_day(points) == 0.8


def test_several_points_on_one_day_count_as_points():
    points = [(START, 100), (START, 200), (START + timedelta(days=2), 350)]
    # x = 0, 0, 2; y = 100, 200, 350: (3*700 - 2*650) / (3*4 - 4) = 800 / 8
    assert growth_per_day(points) == 100


@pytest.mark.parametrize(
    "points", [[], [(START, 5)], [(START, 5), (START, 9)]], ids=["none", "one", "one day"]
)
def test_no_growth_without_two_distinct_days(points):
    assert growth_per_day(points) is None


def test_projected_date_from_the_latest_point():
    points = line(10, start=1000, per_day=100)  # latest: 2024-01-10 at 1900
    today = date(2024, 1, 10)
    assert projected_date(points, 2900, today=today) == date(2024, 1, 20)
    assert projected_date(points, 2950, today=today) == date(2024, 1, 21), "rounded up"


def test_a_limit_already_reached_is_the_latest_points_day():
    points = line(10, start=1000, per_day=100)
    assert projected_date(points, 1900, today=date(2024, 3, 1)) == date(2024, 1, 10)
    assert projected_date(points, 1500, today=date(2024, 3, 1)) == date(2024, 1, 10)


def test_a_projection_already_past_is_today():
    points = line(10, start=1000, per_day=100)
    assert projected_date(points, 2000, today=date(2024, 2, 1)) == date(2024, 2, 1)


@pytest.mark.parametrize(
    ("points", "limit"),
    [
        (line(10, per_day=100), None),
        (line(10, per_day=0), 100 * GIB),
        (line(10, per_day=-100), 100 * GIB),
        ([(START, 10)], 100 * GIB),
        (line(3, start=0, per_day=1), 10**30),  # beyond the calendar
    ],
    ids=["no limit", "flat", "shrinking", "one point", "never"],
)
def test_no_projected_date(points, limit):
    assert projected_date(points, limit, today=START) is None


def test_date_reached_from_a_latest_size_and_growth():
    from capacity.forecast import date_reached

    day = date(2026, 1, 10)
    assert date_reached(day, 800, 100.0, 1000, today=day) == date(2026, 1, 12)
    assert date_reached(day, 1000, 0.0, 1000, today=day) == day  # already there
    assert date_reached(day, 800, 0.0, 1000, today=day) is None  # not growing
    assert date_reached(day, 800, None, 1000, today=day) is None
    assert date_reached(day, 800, 100.0, None, today=day) is None
    assert date_reached(day, 800, 100.0, 1000, today=date(2026, 2, 1)) == date(2026, 2, 1)
