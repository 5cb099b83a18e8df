"""Sizes as people write and read them (pure): "500 GB", "1.5 TB", "+1.6 MB".

Units are binary, as Django's ``filesizeformat`` shows them: 1 KB = 1024 bytes,
1 GB = 1024³ bytes.
"""

import re
from decimal import Decimal, InvalidOperation

from django.template.defaultfilters import filesizeformat

UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
SIZE = re.compile(
    r"^\s*(?P<number>\d+(?:[.,]\d+)?)\s*(?:(?P<unit>[KMGTP])(?:i?B)?|B|bytes?)?\s*$", re.I
)


def parse_size(text: str) -> int:
    """Bytes of ``"500 GB"``, ``"1.5T"``, ``"2 TiB"`` or ``"1048576"``; ValueError otherwise."""
    match = SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r}")
    try:
        number = Decimal(match["number"].replace(",", "."))
    except InvalidOperation as exc:
        raise ValueError(f"not a size: {text!r}") from exc
    value = number * UNITS[(match["unit"] or "").upper()]
    if value != value.to_integral_value():
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)


def exact_size(value: int) -> str:
    """``value`` in the largest unit that divides it exactly, so that it reads back the same:
    21474836480 → "20 GB", 1536 → "1536 bytes"."""
    for suffix, unit in (("PB", 1024**5), ("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2)):
        if value and value % unit == 0:
            return f"{value // unit} {suffix}"
    if value and value % 1024 == 0:
        return f"{value // 1024} KB"
    return f"{value} bytes"


def signed_size(value) -> str:
    """A change in bytes with its sign (a true minus); an em dash when there is none."""
    if value is None:
        return "—"
    sign = "+" if value >= 0 else "−"
    return f"{sign}{filesizeformat(abs(value))}"
