"""Serializer pieces shared by the apps' APIs: input PostgreSQL can store, and value
rendering for the fast serializers (lists and feeds that write rows without DRF's per-field
machinery)."""

from datetime import datetime, tzinfo

from django.utils.translation import gettext as _
from rest_framework import serializers

from whalefall.text import unstorable_character


def iso_datetime(value: datetime | None, zone: tzinfo) -> str | None:
    """An aware datetime as DRF's DateTimeField renders it: ISO 8601 in ``zone``, ``Z`` for
    UTC; None stays None."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _unstorable_detail(value):
    """Error detail for every string in ``value`` holding a NUL or an unpaired surrogate
    (nested the way the value is, for error paths), or None when all of it can be stored."""
    if isinstance(value, str):
        if unstorable_character(value) is None:
            return None
        return [
            serializers.ErrorDetail(
                _("Contains a NUL character or an unpaired surrogate, which cannot be stored."),
                code="unstorable",
            )
        ]
    if isinstance(value, dict):
        found = {k: d for k, v in value.items() if (d := _unstorable_detail(v)) is not None}
        return found or None
    if isinstance(value, list):
        found = [_unstorable_detail(v) for v in value]
        return [d or [] for d in found] if any(found) else None
    return None


class StorableInputMixin:
    """Refuses text PostgreSQL cannot store before any field reads it: the field errors that
    quote a value (unknown choices, slugs) could not even be sent back as UTF-8."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            known = {k: v for k, v in data.items() if k in self.fields}
            detail = _unstorable_detail(known)
            if detail:
                raise serializers.ValidationError(detail)
        return super().to_internal_value(data)
