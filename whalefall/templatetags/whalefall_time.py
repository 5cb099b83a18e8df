"""``{{ value|moment }}``: a point in time written the one WhaleFall way
(``whalefall.moments``)."""

from django import template

from whalefall.moments import moment as _moment

register = template.Library()


@register.filter
def moment(value):
    """``value`` (an aware datetime) as ``2026-12-05 13:08:42 CST``."""
    return _moment(value)
