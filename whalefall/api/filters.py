"""Filters shared by the apps' filter sets."""

import datetime

import django_filters
from django import forms
from django.utils.translation import gettext as _
from django_filters.fields import IsoDateTimeField, RangeField
from django_filters.widgets import DateRangeWidget
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from whalefall.db import MAX_BIGINT


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.Filter):
    """An id: a whole number in the range of the id columns, so that ``?instance=1.5`` or
    ``?instance=1e30`` is a 400 rather than a truncated match or a database error."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_BIGINT)
        super().__init__(*args, **kwargs)


@extend_schema_field(OpenApiTypes.INT)
class IdInFilter(django_filters.BaseInFilter, IdFilter):
    """Ids, comma-separated."""


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or 1/0); anything else is an error, not "no filter"."""

    widget = forms.TextInput
    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            return self.VALUES[str(value).lower()]
        except KeyError:
            raise forms.ValidationError(_("Enter true or false."), code="invalid") from None

    def validate(self, value):
        pass


class BooleanFilter(django_filters.BooleanFilter):
    """A boolean filter that refuses a value it cannot read: ``superuser=yes`` returning
    every account would be a silent wrong answer."""

    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC: Python reads offsets PostgreSQL refuses (beyond ±15:59)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:  # an offset taking year 1 or 9999 over the edge
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class UTCDateTimeRangeField(RangeField):
    widget = DateRangeWidget

    def __init__(self, *args, **kwargs):
        super().__init__((UTCDateTimeField(), UTCDateTimeField()), *args, **kwargs)


class DateTimeRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """``<name>_after`` / ``<name>_before``: ISO 8601 bounds, inclusive."""

    field_class = UTCDateTimeRangeField


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """One ISO 8601 bound, any offset, compared in UTC."""

    field_class = UTCDateTimeField
