"""The server-side SVG line chart: geometry, axis labels that fit, and escaping."""

import re
from datetime import date, timedelta

from django.template.defaultfilters import filesizeformat

from whalefall.charts import Series, line_chart

START = date(2026, 1, 1)
END = START + timedelta(days=10)


def polyline_points(svg: str) -> list[tuple[float, float]]:
    raw = re.search(r'<polyline [^>]*points="([^"]+)"', svg).group(1)
    return [tuple(map(float, pair.split(","))) for pair in raw.split()]


def test_points_span_the_plot_from_start_to_end_and_peak_to_zero():
    series = Series("db", "#2563eb", [(START, 0), (END, 100), (START + timedelta(days=5), 50)])
    svg = line_chart([series], start=START, end=END)
    points = polyline_points(svg)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    assert xs == sorted(xs)  # drawn in day order
    assert ys[0] > ys[1] > ys[2]  # higher values are higher up
    assert ys[1] == (ys[0] + ys[2]) / 2
    assert xs[2] == 640 - 8  # the last day on the right edge


def test_the_axis_has_room_for_its_longest_label():
    def left_edge(peak, **kwargs):
        svg = line_chart(
            [Series("db", "#000000", [(START, 0), (END, peak)])], start=START, end=END, **kwargs
        )
        return polyline_points(svg)[0][0], svg

    small, _ = left_edge(900)  # labels "0" … "900"
    large, svg = left_edge(888 * 1024**2, value_format=filesizeformat)
    assert small == 48
    assert "888.0\xa0MB" in svg
    # Eight characters a label need more than the default 48 px.
    assert large > 48


def test_labels_and_titles_are_escaped():
    svg = line_chart(
        [Series('<b>"x"</b>', "#000000", [(START, 1)])], start=START, end=END, title="a & <b>"
    )
    assert "<b>" not in svg
    assert "&lt;b&gt;&quot;x&quot;&lt;/b&gt;" in svg
    assert 'aria-label="a &amp; &lt;b&gt;"' in svg
    assert "<circle" in svg  # a single point is drawn as a dot


def test_an_empty_chart_still_draws_its_axes():
    svg = line_chart([Series("db", "#000000", [])], start=START, end=END)
    assert svg.startswith('<svg class="wf-chart"')
    assert svg.endswith("</svg>")
    assert "<polyline" not in svg
    assert START.isoformat() in svg
    assert END.isoformat() in svg
