"""Small server-side SVG charts for admin pages: no JavaScript, no CDN, nothing to vendor."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


@dataclass(frozen=True)
class Series:
    """One line: a label, a #rrggbb colour and its (day, value) points."""

    label: str
    colour: str
    points: Sequence[tuple[date, float]]


def _ticks(top: float) -> list[float]:
    if top <= 0:
        return [0.0]
    return [top * i / 4 for i in range(5)]


def _n(value: float) -> str:
    """A coordinate, formatted before it reaches format_html (which escapes to strings)."""
    return f"{value:.1f}"


def _short(value: float) -> str:
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def line_chart(
    series: Sequence[Series],
    *,
    start: date,
    end: date,
    width: int = 640,
    height: int = 180,
    title: str = "",
    value_format=_short,
) -> SafeString:
    """An SVG line chart of ``series`` over the days ``start``..``end`` (inclusive)."""
    peak = max((v for s in series for _, v in s.points), default=0) or 1
    ticks = [(tick, str(value_format(tick))) for tick in _ticks(peak)]
    # Room on the left for the longest axis label (about 6.5 px a character at 11 px).
    longest = max((len(label) for _, label in ticks), default=0)
    left, right, top, bottom = max(48, round(longest * 6.5) + 10), 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    days = max((end - start).days, 1)

    def x(day: date) -> float:
        return left + plot_w * (day - start).days / days

    def y(value: float) -> float:
        return top + plot_h * (1 - value / peak)

    parts = [
        format_html(
            '<svg class="wf-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
            'width="{}" height="{}" role="img" aria-label="{}">',
            width,
            height,
            width,
            height,
            title,
        )
    ]
    if title:
        parts.append(format_html("<title>{}</title>", title))
    for tick, label in ticks:
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
    for day in (start, end):
        parts.append(
            format_html(
                '<text x="{}" y="{}" class="wf-chart-label" text-anchor="{}">{}</text>',
                _n(x(day)),
                height - 6,
                "start" if day == start else "end",
                day.isoformat(),
            )
        )
    for line in series:
        points = sorted(p for p in line.points if start <= p[0] <= end)
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
        if len(points) == 1:
            (d, v) = points[0]
            parts.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="3" fill="{}"/>', _n(x(d)), _n(y(v)), line.colour
                )
            )
    # Every part was built by format_html, which escaped the values.
    return format_html_join("", "{}", ((part,) for part in parts)) + SafeString("</svg>")
