"""Periodic tasks' schedules in words and their next run time (SPEC §8): "daily at 01:00
(Asia/Shanghai)" instead of a raw crontab. Pure: no ORM, no I/O; the admin passes the
schedule's fields in."""

import re
from datetime import datetime, time

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

_NUMBER = re.compile(r"\d{1,2}")
_STEP = re.compile(r"\*/(\d{1,2})")

# Cron day-of-week numbers (0 and 7 are Sunday).
_WEEKDAYS = {
    "0": gettext_lazy("Sunday"),
    "1": gettext_lazy("Monday"),
    "2": gettext_lazy("Tuesday"),
    "3": gettext_lazy("Wednesday"),
    "4": gettext_lazy("Thursday"),
    "5": gettext_lazy("Friday"),
    "6": gettext_lazy("Saturday"),
    "7": gettext_lazy("Sunday"),
}


def daily_time(*, minute: str, hour: str, day_of_month: str, month_of_year: str, day_of_week: str):
    """The time of day of a crontab that runs once a day, or None for any other crontab."""
    if (day_of_month, month_of_year, day_of_week) != ("*", "*", "*"):
        return None
    if not (_NUMBER.fullmatch(minute) and _NUMBER.fullmatch(hour)):
        return None
    if int(minute) > 59 or int(hour) > 23:
        return None
    return time(int(hour), int(minute))


def crontab_text(
    *,
    minute: str,
    hour: str,
    day_of_month: str,
    month_of_year: str,
    day_of_week: str,
    timezone: str,
) -> str:
    """A crontab in words, with its time zone named."""
    fields = {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }
    zone = str(timezone)
    at = daily_time(**fields)
    if at is not None:
        return _("daily at %(time)s (%(zone)s)") % {"time": at.strftime("%H:%M"), "zone": zone}
    simple_minute = _NUMBER.fullmatch(minute) and int(minute) <= 59
    simple_hour = _NUMBER.fullmatch(hour) and int(hour) <= 23
    if (
        (day_of_month, month_of_year) == ("*", "*")
        and simple_minute
        and simple_hour
        and day_of_week in _WEEKDAYS
    ):
        return _("every %(day)s at %(time)02d:%(minute)02d (%(zone)s)") % {
            "day": _WEEKDAYS[day_of_week],
            "time": int(hour),
            "minute": int(minute),
            "zone": zone,
        }
    if (hour, day_of_month, month_of_year, day_of_week) == ("*", "*", "*", "*"):
        if simple_minute:
            return _("hourly at minute %(minute)d") % {"minute": int(minute)}
        if minute == "*":
            return _("every minute")
        if (step := _STEP.fullmatch(minute)) and 0 < int(step.group(1)) < 60:
            every = int(step.group(1))
            return ngettext("every %(count)d minute", "every %(count)d minutes", every) % {
                "count": every
            }
    return _("cron “%(expression)s” (%(zone)s)") % {
        "expression": " ".join(fields.values()),
        "zone": zone,
    }


# django-celery-beat's interval periods, in seconds.
PERIOD_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "microseconds": 0}


def interval_text(*, every: int, period: str) -> str:
    """An interval schedule in words, in the largest whole unit."""
    seconds = every * PERIOD_SECONDS.get(period, 0)
    if seconds <= 0:
        return ngettext("every %(count)d %(period)s", "every %(count)d %(period)s", every) % {
            "count": every,
            "period": period,
        }
    if seconds % 86400 == 0:
        count = seconds // 86400
        return ngettext("every day", "every %(count)d days", count) % {"count": count}
    if seconds % 3600 == 0:
        count = seconds // 3600
        return ngettext("every hour", "every %(count)d hours", count) % {"count": count}
    if seconds % 60 == 0:
        count = seconds // 60
        return ngettext("every minute", "every %(count)d minutes", count) % {"count": count}
    return ngettext("every second", "every %(count)d seconds", seconds) % {"count": seconds}


def next_run(schedule, *, last_run_at: datetime | None, now: datetime) -> datetime:
    """When a celery ``schedule`` (crontab or interval) next falls due after ``last_run_at``
    (never run: from ``now``); never earlier than ``now``, since beat sends an overdue
    task at once."""
    last = last_run_at or now
    zone = getattr(schedule, "tz", None)
    if zone is not None:
        # A crontab's hours are read in the zone of the moment it counts from.
        last = last.astimezone(zone)
    remaining = schedule.remaining_estimate(last)
    due = schedule.now() + remaining
    return max(due, now)
