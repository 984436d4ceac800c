"""The SVG chart builder (annotations.charts): pure Python, no database, no inline style or script."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from annotations import charts

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_line_chart_draws_one_polyline_per_series_inside_the_plot():
    svg = charts.line_chart(
        [
            charts.Series("fixmatch", [(0, 0.1), (100, 0.5), (200, 0.9)]),
            charts.Series("supervised", [(0, 0.2), (200, 0.6)]),
        ],
        title="F1",
        x_label="human labels used",
        y_label="F1",
        y_range=(0, 1),
    )
    root = _parse(svg)
    groups = root.findall(f"{NS}g[@class='chart-series']")
    assert [g.get("data-series") for g in groups] == ["fixmatch", "supervised"]
    assert [g.get("data-points") for g in groups] == ["3", "2"]
    xs = [float(p.split(",")[0]) for g in groups for p in g.find(f"{NS}polyline").get("points").split()]
    ys = [float(p.split(",")[1]) for g in groups for p in g.find(f"{NS}polyline").get("points").split()]
    assert min(xs) >= charts.LEFT and max(xs) <= charts.WIDTH - charts.RIGHT
    assert min(ys) >= charts.TOP and max(ys) <= charts.HEIGHT - charts.BOTTOM
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "human labels used" in texts and "F1" in texts  # both axes are labelled
    assert "fixmatch" in texts and "supervised" in texts  # a legend for several series


def test_chart_text_is_escaped_and_needs_no_inline_style_or_script():
    evil = '<script>alert(1)</script>" onload="x'
    svg = charts.line_chart(
        [charts.Series(evil, [(0, 1), (1, 2)], tooltips=[evil, evil])],
        title=evil,
        x_label=evil,
        y_label=evil,
        marks=[charts.Mark(0.5, 1.5, evil)],
    )
    svg += charts.stacked_bars([evil], [(evil, [3])], title=evil, y_label=evil)
    assert "<script" not in svg and 'onload="' not in svg
    assert not re.search(r"\sstyle=", svg)
    _parse(charts.line_chart([charts.Series(evil, [(0, 1)])], title=evil, x_label="x", y_label="y"))  # well-formed


def test_pr_mark_sits_on_its_point():
    svg = charts.line_chart(
        [charts.Series("test", [(0.0, 1.0), (0.5, 0.8), (1.0, 0.2)])],
        title="PR",
        x_label="recall",
        y_label="precision",
        x_range=(0, 1),
        y_range=(0, 1),
        marks=[charts.Mark(0.5, 0.8, "threshold 0.420")],
    )
    mark = _parse(svg).find(f"{NS}g[@class='chart-mark']/{NS}circle")
    dot = [c for c in _parse(svg).iter(f"{NS}circle") if c.get("class", "").startswith("chart-dot")][1]
    assert (mark.get("cx"), mark.get("cy")) == (dot.get("cx"), dot.get("cy"))
    assert mark.find(f"{NS}title").text == "threshold 0.420"


def test_stacked_bars_normalised_fill_each_bar_to_the_top():
    svg = charts.stacked_bars(
        ["#1", "#2"], [("harmful", [30, 5]), ("unharmful", [10, 45])], title="mix", y_label="share", normalize=True
    )
    root = _parse(svg)
    for group in root.findall(f"{NS}g[@class='chart-bar']"):
        rects = group.findall(f"{NS}rect")
        assert [r.get("data-series") for r in rects] == ["harmful", "unharmful"]
        heights = sum(float(r.get("height")) for r in rects)
        assert heights == pytest.approx(charts.HEIGHT - charts.BOTTOM - charts.LEGEND_ROW - charts.TOP, abs=0.3)
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert "#1 · harmful: 30 (75%)" in titles


def test_empty_and_non_finite_input_still_render():
    svg = charts.line_chart(
        [charts.Series("loss", [(1, float("nan")), (2, float("inf")), (3, 0.5)])],
        title="t",
        x_label="step",
        y_label="loss",
    )
    assert _parse(svg).find(f"{NS}g[@class='chart-series']").get("data-points") == "1"
    assert _parse(charts.line_chart([], title="t", x_label="x", y_label="y")).tag == f"{NS}svg"


@pytest.mark.parametrize(
    ("lo", "hi", "expected"), [(0, 1, [0, 0.25, 0.5, 0.75, 1.0]), (0, 120, [0, 50, 100, 150]), (3, 3, [3, 4, 5, 6])]
)
def test_nice_ticks(lo, hi, expected):
    assert charts.nice_ticks(lo, hi) == pytest.approx(expected)


def test_downsample_keeps_first_and_last():
    points = list(range(1000))
    out = charts.downsample(points, 50)
    assert len(out) == 50 and out[0] == 0 and out[-1] == 999
