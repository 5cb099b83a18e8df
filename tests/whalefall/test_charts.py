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


def test_no_points_draw_no_chart():
    """The page says "No statistics yet" in words, without empty axes."""
    assert line_chart([Series("db", "#000000", [])], start=START, end=END) == ""
    outside = Series("db", "#000000", [(START - timedelta(days=3), 5)])
    assert line_chart([outside], start=START, end=END) == ""


def test_the_chart_takes_the_width_of_its_box():
    svg = line_chart([Series("db", "#000000", [(START, 1), (END, 2)])], start=START, end=END)
    assert 'viewBox="0 0 640 200"' in svg
    assert not re.search(r"<svg[^>]* width=", svg)


def test_real_growth_is_visible_on_an_axis_around_the_values():
    gib = 1024**3
    points = [(START + timedelta(days=i), 12 * gib + i * 100 * 1024**2) for i in range(11)]
    svg = line_chart([Series("db", "#000000", points)], start=START, end=END)
    ys = [y for _x, y in polyline_points(svg)]
    # From the bottom of the plot to near its top, not a flat line high above a zero axis.
    assert ys[0] - ys[-1] > 0.6 * (200 - 8 - 22)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', svg)[:-1]  # the last day's
    assert "0" not in labels


def test_enough_days_are_labelled():
    end = START + timedelta(days=89)
    svg = line_chart([Series("db", "#000000", [(START, 1), (end, 2)])], start=START, end=end)
    days = re.findall(r">(\d{4}-\d{2}-\d{2})</text>", svg)
    assert days[0] == START.isoformat()
    assert days[-1] == end.isoformat()
    assert 5 <= len(days) <= 8
    assert days == sorted(set(days))


def test_the_limit_is_a_line_and_every_point_tells_its_value():
    series = Series("Shop", "#2563eb", [(START, 10), (END, 12)])
    svg = line_chart([series], start=START, end=END, limit=20, limit_label="capacity limit")
    limit_y = float(re.search(r'<line [^>]*y1="([\d.]+)"[^>]*class="wf-chart-limit"', svg)[1])
    ys = [y for _x, y in polyline_points(svg)]
    assert limit_y < min(ys)  # above the line: more than the values
    assert "<title>capacity limit: 20</title>" in svg
    assert f"<title>Shop · {START.isoformat()}: 10</title>" in svg
    assert svg.count('class="wf-chart-point"') == 2


def test_counts_are_whole_numbers_from_zero():
    series = Series("matched", "#000000", [(START, 0), (END, 2)])
    svg = line_chart([series], start=START, end=END, integer=True, zero=True)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', svg)[:-1]  # the last day's
    assert labels[0] == "0"
    assert all(label.isdigit() for label in labels), labels
