"""Sizes in capacity templates: ``{{ value|signed_size }}`` gives +1.6 MB or −68.9 KB."""

from django import template

from capacity import sizes

register = template.Library()
register.filter("signed_size", sizes.signed_size)
