"""The one way WhaleFall writes a point in time: ``2026-12-05 13:08:42 CST`` — date, time to
the second (the changes of one sync differ by seconds), and the zone named. The admin's
default (``DATETIME_FORMAT`` through ``whalefall.formats``), the ``moment`` template filter,
computed columns and exports all use :data:`MOMENT_FORMAT`."""

from datetime import datetime

from django.utils import dateformat, timezone

# Django date-format characters (https://docs.djangoproject.com/en/5.2/ref/templates/builtins/#date).
MOMENT_FORMAT = "Y-m-d H:i:s T"


# MOMENT_FORMAT for strftime: the same text, without the date-format parser's cost per
# cell of a long list.
_STRFTIME = "%Y-%m-%d %H:%M:%S %Z"


def moment(value: datetime | None) -> str:
    """``value`` in the current time zone, written as :data:`MOMENT_FORMAT` writes it;
    "" for None."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        return timezone.localtime(value).strftime(_STRFTIME)
    return dateformat.format(value, MOMENT_FORMAT).strip()


def iso_moment(value: datetime | None) -> str:
    """``value`` in the current time zone as ISO 8601 with its offset, to the second (for
    exports, where a program reads the cell): ``2026-12-05T13:08:42+08:00``."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.isoformat(timespec="seconds")
