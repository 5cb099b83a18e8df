"""Value rendering shared by the API's fast serializers (lists and feeds that write rows
without DRF's per-field machinery)."""

from datetime import datetime, tzinfo


def iso_datetime(value: datetime | None, zone: tzinfo) -> str | None:
    """An aware datetime as DRF's DateTimeField renders it: ISO 8601 in ``zone``, ``Z`` for
    UTC; None stays None."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
