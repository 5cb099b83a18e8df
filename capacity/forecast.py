"""Growth and limit forecasts from daily sizes (pure: no ORM, no I/O).

Growth is the slope of the least-squares line through (day, bytes) points, in bytes per
day. The sums are taken over integers (days counted from the first point), so the slope of
exactly linear data comes out exact rather than off by float rounding.
"""

import math
from collections.abc import Iterable
from datetime import date, timedelta

Point = tuple[date, int]


def growth_per_day(points: Iterable[Point]) -> float | None:
    """Least-squares growth in bytes per day; None with fewer than two distinct days."""
    points = list(points)
    if len({day for day, _size in points}) < 2:
        return None
    origin = min(day for day, _size in points)
    xs = [(day - origin).days for day, _size in points]
    ys = [int(size) for _day, size in points]
    n = len(points)
    sum_x, sum_y = sum(xs), sum(ys)
    numerator = n * sum(x * y for x, y in zip(xs, ys, strict=True)) - sum_x * sum_y
    denominator = n * sum(x * x for x in xs) - sum_x * sum_x
    return numerator / denominator  # int / int: correctly rounded once


def projected_date(points: Iterable[Point], limit_bytes: int | None, *, today: date) -> date | None:
    """The day the size reaches ``limit_bytes`` at the fitted growth, counted from the latest
    point; None without a limit, without growth, or beyond the calendar."""
    if limit_bytes is None:
        return None
    points = sorted(points)
    growth = growth_per_day(points)
    if growth is None:
        return None
    last_day, last_size = points[-1]
    return date_reached(last_day, last_size, growth, limit_bytes, today=today)


def date_reached(
    last_day: date, last_size: int, growth: float | None, limit_bytes: int | None, *, today: date
) -> date | None:
    """The day a size of ``last_size`` on ``last_day`` reaches ``limit_bytes`` at ``growth``
    bytes per day; None without a limit, without growth, or beyond the calendar.

    A limit already reached gives ``last_day``; a projection that falls before ``today``
    gives ``today``, since it was not observed reached.
    """
    if limit_bytes is None or growth is None:
        return None
    if last_size >= limit_bytes:
        return last_day
    if growth <= 0:
        return None
    days = math.ceil((limit_bytes - last_size) / growth)
    if days > (date.max - last_day).days:
        return None
    return max(last_day + timedelta(days=days), today)
