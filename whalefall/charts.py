"""Small server-side SVG charts for admin pages: no CDN, nothing to vendor, nothing inline.

A chart scales to the width of its box (viewBox; ``.wf-chart`` in whalefall/admin.css), its
y axis spans the values drawn (a database growing from 12 to 13 GB rises across the chart
instead of lying flat on a zero-based axis), a limit is drawn as a dashed line, and every
point carries its day and value as an SVG ``<title>``: the browser's own tooltip on hover,
which the Content-Security-Policy allows (no script, no inline style).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# At most this many day labels under the axis, and of value ticks beside it.
MAX_DAY_LABELS = 8
VALUE_TICKS = 5


@dataclass(frozen=True)
class Series:
    """One line: a label, a #rrggbb colour and its (day, value) points."""

    label: str
    colour: str
    points: Sequence[tuple[date, float]]


def _n(value: float) -> str:
    """A coordinate, formatted before it reaches format_html (which escapes to strings)."""
    return f"{value:.1f}"


def _short(value: float) -> str:
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _nice_step(span: float, count: int, *, integer: bool) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``count`` intervals."""
    raw = span / max(count - 1, 1)
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return max(1.0, math.ceil(step)) if integer else step


def value_axis(
    values: Sequence[float], *, integer: bool = False, zero: bool = False
) -> tuple[float, float, list[float]]:
    """The low and high ends of the y axis and its ticks for ``values``: round numbers
    around the values drawn, from 0 only when ``zero`` (counts); ``integer`` ticks are
    whole numbers (a count of accounts has no 0.2)."""
    low, high = min(values), max(values)
    if zero:
        low = min(0.0, low)
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = (low if zero else low - pad), high + pad
    step = _nice_step(high - low, VALUE_TICKS, integer=integer)
    bottom = math.floor(low / step) * step
    if zero and low >= 0:
        bottom = max(bottom, 0.0)
    top = math.ceil(high / step) * step
    if top == bottom:
        top = bottom + step
    ticks = []
    tick = bottom
    while tick <= top + step / 1000:
        ticks.append(tick)
        tick += step
    return bottom, top, ticks


def day_labels(start: date, end: date, *, most: int = MAX_DAY_LABELS) -> list[date]:
    """Evenly spaced days from ``start`` to ``end`` (both included), at most ``most``."""
    days = (end - start).days
    if days <= 0:
        return [start]
    step = max(1, math.ceil(days / (most - 1)))
    labels = [start + timedelta(days=offset) for offset in range(0, days, step)]
    if (end - labels[-1]).days < step / 2 and len(labels) > 1:
        labels.pop()  # too close to the last label: they would overlap
    return [*labels, end]


def line_chart(
    series: Sequence[Series],
    *,
    start: date,
    end: date,
    width: int = 640,
    height: int = 200,
    title: str = "",
    value_format: Callable[[float], str] = _short,
    limit: float | None = None,
    limit_label: str = "",
    integer: bool = False,
    zero: bool = False,
) -> SafeString:
    """An SVG line chart of ``series`` over the days ``start``..``end`` (inclusive); an
    empty string when no series has a point in that range (the page says so in words
    rather than drawing empty axes). ``limit`` draws a dashed line at that value."""
    drawn = [(line, sorted(p for p in line.points if start <= p[0] <= end)) for line in series]
    values = [v for _line, points in drawn for _d, v in points]
    if not values:
        return SafeString("")
    if limit is not None:
        values.append(limit)
    low, high, ticks = value_axis(values, integer=integer, zero=zero)
    labels = [(tick, str(value_format(tick))) for tick in ticks]
    # Room on the left for the longest axis label (about 6.5 px a character at 11 px).
    longest = max((len(label) for _, label in labels), default=0)
    left, right, top, bottom = max(48, round(longest * 6.5) + 10), 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    days = max((end - start).days, 1)

    def x(day: date) -> float:
        return left + plot_w * (day - start).days / days

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    parts = [
        format_html(
            '<svg class="wf-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
            'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{}">',
            width,
            height,
            title,
        )
    ]
    if title:
        parts.append(format_html("<title>{}</title>", title))
    for tick, label in labels:
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="wf-chart-grid"/>'
                '<text x="{}" y="{}" class="wf-chart-label" text-anchor="end">{}</text>',
                left,
                width - right,
                _n(y(tick)),
                _n(y(tick)),
                left - 4,
                _n(y(tick) + 4),
                label,
            )
        )
    shown = day_labels(start, end)
    for day in shown:
        anchor = "start" if day == start else "end" if day == end else "middle"
        parts.append(
            format_html(
                '<text x="{}" y="{}" class="wf-chart-label" text-anchor="{}">{}</text>',
                _n(x(day)),
                height - 6,
                anchor,
                day.isoformat(),
            )
        )
    if limit is not None:
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="wf-chart-limit">'
                "<title>{}</title></line>",
                left,
                width - right,
                _n(y(limit)),
                _n(y(limit)),
                f"{limit_label}: {value_format(limit)}" if limit_label else value_format(limit),
            )
        )
    for line, points in drawn:
        if not points:
            continue
        coords = " ".join(f"{_n(x(d))},{_n(y(v))}" for d, v in points)
        parts.append(
            format_html(
                '<polyline fill="none" stroke="{}" stroke-width="2" points="{}">'
                "<title>{}</title></polyline>",
                line.colour,
                coords,
                line.label,
            )
        )
        parts.extend(
            format_html(
                '<circle class="wf-chart-point" cx="{}" cy="{}" r="3" fill="{}">'
                "<title>{} · {}: {}</title></circle>",
                _n(x(d)),
                _n(y(v)),
                line.colour,
                line.label,
                d.isoformat(),
                value_format(v),
            )
            for d, v in points
        )
    # Every part was built by format_html, which escaped the values.
    return format_html_join("", "{}", ((part,) for part in parts)) + SafeString("</svg>")
