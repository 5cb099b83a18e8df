"""Calendar windows of the capacity periods (pure: no ORM, no I/O).

Every window is a pair of dates with both ends inclusive. Weeks run Monday to Sunday; the
previous window of a period is the whole period before it (the previous quarter is the
whole previous quarter, not a window cut short).
"""

import enum
from datetime import date, timedelta


class Period(enum.StrEnum):
    """The period names; ``capacity.models`` reuses them as TextChoices values."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def _month_end(year: int, month: int) -> date:
    if month == 12:
        return date(year, 12, 31)
    return date(year, month + 1, 1) - timedelta(days=1)


def window(period: str, day: date) -> tuple[date, date]:
    """First and last day of the ``period`` that contains ``day``."""
    try:
        period = Period(period)
    except ValueError:
        raise ValueError(f"unknown period {period!r}; expected one of {list(Period)}") from None
    if period is Period.DAY:
        return day, day
    if period is Period.WEEK:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if period is Period.MONTH:
        return day.replace(day=1), _month_end(day.year, day.month)
    if period is Period.QUARTER:
        first_month = (day.month - 1) // 3 * 3 + 1
        return date(day.year, first_month, 1), _month_end(day.year, first_month + 2)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def previous_window(period: str, day: date) -> tuple[date, date]:
    """First and last day of the whole ``period`` before the one that contains ``day``."""
    start, _end = window(period, day)
    return window(period, start - timedelta(days=1))
