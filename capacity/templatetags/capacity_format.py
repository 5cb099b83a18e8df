"""Sizes and growth as people read them: ``{{ value|signed_size }}`` gives +1.6 MB or
−68.9 KB, with a true minus sign."""

from django import template
from django.template.defaultfilters import filesizeformat

register = template.Library()


@register.filter
def signed_size(value) -> str:
    """A change in bytes with its sign; an em dash when there is none."""
    if value is None:
        return "—"
    sign = "+" if value >= 0 else "−"
    return f"{sign}{filesizeformat(abs(value))}"
