"""Sizes typed and shown as people write them (binary units, as filesizeformat shows)."""

import pytest

from capacity.sizes import exact_size, parse_size, signed_size

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500 GB", 500 * GIB),
        ("1.5T", 1536 * GIB),
        ("2 TiB", 2 * TIB),
        ("20gb", 20 * GIB),
        ("3,5 MB", 3 * MIB + 512 * KIB),
        ("1048576", MIB),
        ("1536 bytes", 1536),
        ("1 B", 1),
        (" 0 ", 0),
    ],
)
def test_sizes_people_write(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "-5 GB", "1.5", "1.1 B", "5 XB", "1e9", "5 GB 2"])
def test_what_is_not_a_size_is_refused(text):
    with pytest.raises(ValueError, match=r"not a (size|whole number of bytes)"):
        parse_size(text)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(20 * GIB, "20 GB"), (1536 * GIB, "1536 GB"), (1536, "1536 bytes"), (3 * KIB, "3 KB"),
     (2 * TIB, "2 TB"), (0, "0 bytes")],
)  # fmt: skip
def test_sizes_are_shown_exactly_and_read_back_the_same(value, shown):
    assert exact_size(value) == shown
    assert parse_size(shown) == value


def test_signed_sizes():
    assert signed_size(100 * MIB) == "+100.0\xa0MB"
    assert signed_size(-1536) == "−1.5\xa0KB"
    assert signed_size(None) == "—"
