"""Server-rendered SVG charts: plain Python, no Django, no script, no inline style.

The strict CSP forbids inline ``style`` and ``<script>``; these charts need neither: geometry is
in SVG attributes, colours come from static CSS classes (``chart-s0`` … ``chart-s5``, see
``static/css/umbra.css``), and tooltips are SVG ``<title>`` elements. Every text that reaches the
markup (series names, titles, tooltips) is escaped here, so an item text or a bench name cannot
inject markup. A chart is an ``Svg`` string that Django templates print as is (``__html__``).

    line_chart([Series("loss", [(1, 0.7), (2, 0.5)])], title="Training loss", x_label="step", y_label="loss")
    stacked_bars(["#1", "#2"], [("harmful", [10, 4]), ("unharmful", [30, 40])], title=..., y_label=...)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

N_COLOURS = 6
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 44  # margins: room for tick labels and axis titles
LEGEND_ROW = 18


class Svg(str):
    """Markup that is already safe: Django's ``conditional_escape`` leaves it as is."""

    def __html__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    tooltips: Sequence[str] = ()  # one per point (optional)
    colour: int | None = None  # chart-s<colour>; default: position in the chart
    dots: bool = True


@dataclass(frozen=True)
class Mark:
    """A labelled point drawn over a line chart (e.g. the chosen threshold on a PR curve)."""

    x: float
    y: float
    label: str


@dataclass
class _Frame:
    width: int
    height: int
    x0: float
    x1: float
    y0: float
    y1: float
    bottom_pad: int = BOTTOM
    parts: list[str] = field(default_factory=list)

    @property
    def plot_bottom(self) -> float:
        return self.height - self.bottom_pad

    def sx(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return round(LEFT + (self.width - LEFT - RIGHT) * (x - self.x0) / span, 1)

    def sy(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return round(self.plot_bottom - (self.plot_bottom - TOP) * (y - self.y0) / span, 1)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 2.5 or 5 × a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < hi - step * 1e-9:  # the last tick reaches hi
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(v: float) -> str:
    if v == int(v) and abs(v) < 1e6:
        return f"{int(v):,}"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _open(frame: _Frame, title: str, kind: str) -> None:
    tid = f"chart-{kind}-{zlib.crc32((title + kind).encode()):08x}"
    frame.parts.append(
        f'<svg class="chart chart-{escape(kind)}" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-labelledby="{tid}" data-chart="{escape(kind)}"><title id="{tid}">{escape(title)}</title>'
    )


def _axes(
    frame: _Frame,
    x_ticks: Sequence[float] | None,
    y_ticks: Sequence[float],
    x_label: str,
    y_label: str,
    x_names: Sequence[tuple[float, str]] = (),
) -> None:
    p = frame.parts
    right = frame.width - RIGHT
    for t in y_ticks:
        y = frame.sy(t)
        p.append(
            f'<line class="chart-grid" x1="{LEFT}" x2="{right}" y1="{y}" y2="{y}"/>'
            f'<text class="chart-tick" x="{LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(_fmt(t))}</text>'
        )
    ticks = [(frame.sx(t), _fmt(t)) for t in (x_ticks or ())] + [(frame.sx(x), name) for x, name in x_names]
    for x, name in ticks:
        p.append(
            f'<text class="chart-tick" x="{x}" y="{frame.plot_bottom + 16}" text-anchor="middle">{escape(name)}</text>'
        )
    p.append(
        f'<line class="chart-axis" x1="{LEFT}" x2="{right}" y1="{frame.plot_bottom}" y2="{frame.plot_bottom}"/>'
        f'<line class="chart-axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{frame.plot_bottom}"/>'
    )
    p.append(
        f'<text class="chart-axis-label" x="{(LEFT + right) / 2}" y="{frame.plot_bottom + 34}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    mid = (TOP + frame.plot_bottom) / 2
    p.append(
        f'<text class="chart-axis-label" x="14" y="{mid}" text-anchor="middle" '
        f'transform="rotate(-90 14 {mid})">{escape(y_label)}</text>'
    )


def _legend(frame: _Frame, names: Sequence[tuple[str, int]]) -> None:
    x, y = LEFT, frame.height - LEGEND_ROW + 12
    for name, colour in names:
        label = name if len(name) <= 40 else name[:39] + "…"
        frame.parts.append(
            f'<g class="chart-legend-item" data-series="{escape(name)}">'
            f'<rect class="chart-key chart-s{colour}" x="{x}" y="{y - 9}" width="10" height="10"/>'
            f'<text class="chart-legend" x="{x + 14}" y="{y}">{escape(label)}</text></g>'
        )
        x += 24 + 7 * len(label)


def _close(frame: _Frame) -> Svg:
    frame.parts.append("</svg>")
    return Svg("".join(frame.parts))


def _finite(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for x, y in points:
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            continue
        if math.isfinite(fx) and math.isfinite(fy):
            out.append((fx, fy))
    return out


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    marks: Sequence[Mark] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
    kind: str = "line",
) -> Svg:
    """Lines (and dots) per series on shared axes, with a legend when there are several series."""
    clean = [(s, _finite(s.points)) for s in series]
    xs = [x for _, pts in clean for x, _ in pts] + [m.x for m in marks]
    ys = [y for _, pts in clean for _, y in pts] + [m.y for m in marks]
    legend = len(series) > 1
    frame = _Frame(width, height, 0, 1, 0, 1, bottom_pad=BOTTOM + (LEGEND_ROW if legend else 0))
    x_ticks = nice_ticks(*(x_range or (min(xs, default=0.0), max(xs, default=1.0))))
    y_ticks = nice_ticks(*(y_range or (min(ys + [0.0]), max(ys, default=1.0))))
    frame.x0, frame.x1 = x_range or (x_ticks[0], x_ticks[-1])
    frame.y0, frame.y1 = y_range or (y_ticks[0], y_ticks[-1])
    if x_range:
        x_ticks = [t for t in x_ticks if x_range[0] <= t <= x_range[1]]
    if y_range:
        y_ticks = [t for t in y_ticks if y_range[0] <= t <= y_range[1]]
    _open(frame, title, kind)
    _axes(frame, x_ticks, y_ticks, x_label, y_label)
    names = []
    for i, (s, pts) in enumerate(clean):
        colour = (s.colour if s.colour is not None else i) % N_COLOURS
        names.append((s.name, colour))
        coords = " ".join(f"{frame.sx(x)},{frame.sy(y)}" for x, y in pts)
        frame.parts.append(
            f'<g class="chart-series" data-series="{escape(s.name)}" data-points="{len(pts)}">'
            f'<polyline class="chart-line chart-s{colour}" points="{coords}"/>'
        )
        if s.dots and len(pts) <= 60:
            for j, (x, y) in enumerate(pts):
                tip = s.tooltips[j] if j < len(s.tooltips) else f"{s.name}: {_fmt(x)}, {_fmt(y)}"
                frame.parts.append(
                    f'<circle class="chart-dot chart-s{colour}" cx="{frame.sx(x)}" '
                    f'cy="{frame.sy(y)}" r="3.5"><title>{escape(tip)}</title></circle>'
                )
        frame.parts.append("</g>")
    for m in marks:
        cx, cy = frame.sx(m.x), frame.sy(m.y)
        # the label sits on the side with room: left of the mark in the right half of the plot
        left_side = cx > (LEFT + width - RIGHT) / 2
        lx, anchor = (cx - 9, "end") if left_side else (cx + 9, "start")
        ly = cy - 8 if cy - 8 > TOP + 8 else cy + 16
        frame.parts.append(
            f'<g class="chart-mark"><circle class="chart-mark-dot" cx="{cx}" cy="{cy}" r="6">'
            f"<title>{escape(m.label)}</title></circle>"
            f'<text class="chart-mark-label" x="{lx}" y="{ly}" text-anchor="{anchor}">'
            f"{escape(m.label)}</text></g>"
        )
    if legend:
        _legend(frame, names)
    return _close(frame)


def stacked_bars(
    groups: Sequence[str],
    stacks: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    y_label: str,
    x_label: str = "",
    normalize: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
    kind: str = "bars",
    colours: Sequence[int] = (),
) -> Svg:
    """One bar per group, split into the stacks (as shares of the bar when ``normalize``)."""
    totals = [sum(max(0.0, float(v[i])) for _, v in stacks) for i in range(len(groups))]
    top = 1.0 if normalize else max(totals + [1.0])
    frame = _Frame(width, height, 0, max(1, len(groups)), 0, top, bottom_pad=BOTTOM + LEGEND_ROW)
    y_ticks = nice_ticks(0, top)
    frame.y1 = y_ticks[-1]
    _open(frame, title, kind)
    slot = (width - LEFT - RIGHT) / max(1, len(groups))
    bar = max(2.0, min(48.0, slot * 0.7))
    step = max(1, math.ceil(len(groups) / 12))  # at most ~12 group names under the axis
    _axes(frame, None, y_ticks, x_label, y_label, x_names=[(i + 0.5, g) for i, g in enumerate(groups) if i % step == 0])
    for i, group in enumerate(groups):
        x = round(LEFT + slot * i + (slot - bar) / 2, 1)
        base = 0.0
        frame.parts.append(f'<g class="chart-bar" data-group="{escape(group)}">')
        for k, (name, values) in enumerate(stacks):
            colour = colours[k] if k < len(colours) else k
            v = max(0.0, float(values[i]))
            share = v / totals[i] if normalize and totals[i] else v
            if share <= 0:
                continue
            y_top, y_bot = frame.sy(base + share), frame.sy(base)
            tip = f"{group} · {name}: {_fmt(v)}" + (f" ({share:.0%})" if normalize else "")
            frame.parts.append(
                f'<rect class="chart-fill chart-s{colour % N_COLOURS}" data-series="{escape(name)}" '
                f'x="{x}" y="{y_top}" width="{round(bar, 1)}" height="{round(y_bot - y_top, 1)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            base += share
        frame.parts.append("</g>")
    _legend(frame, [(name, (colours[i] if i < len(colours) else i) % N_COLOURS) for i, (name, _) in enumerate(stacks)])
    return _close(frame)


def downsample(points: Sequence, limit: int = 200) -> list:
    """At most ``limit`` points, evenly spaced, the last one kept (long train logs stay light)."""
    n = len(points)
    if n <= limit:
        return list(points)
    idx = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
    return [points[i] for i in idx]


def refine_charts(*, result: dict | None) -> dict | None:
    """θ̂ of each set and agreement with held-out human labels, per refinement iteration."""
    iterations = [it for it in (result or {}).get("iterations") or [] if isinstance(it, dict)]
    if not iterations:
        return None
    thetas = [(it["iteration"], it["theta"]) for it in iterations if it.get("theta")]
    theta = (
        line_chart(
            [
                Series("θ̂ harmful set", [(i, t["theta_p"]) for i, t in thetas], colour=3),
                Series("θ̂ unharmful set", [(i, t["theta_n"]) for i, t in thetas], colour=2),
            ],
            title="Estimated share of harmful items in each set, per iteration (0 = the noisy start)",
            x_label="iteration",
            y_label="θ̂ (share harmful)",
            y_range=(0.0, 1.0),
            kind="refine-theta",
        )
        if thetas
        else None
    )
    tests = [(it["iteration"], it.get("test") or {}) for it in iterations]
    agreement = (
        line_chart(
            [
                Series("accuracy", [(i, t["accuracy"]) for i, t in tests if t.get("accuracy") is not None]),
                Series("F1", [(i, t["f1"]) for i, t in tests if t.get("f1") is not None]),
            ],
            title="Agreement of the refined labels with held-out human labels, per iteration",
            x_label="iteration",
            y_label="agreement",
            y_range=(0.0, 1.0),
            kind="refine-agreement",
        )
        if any(t.get("accuracy") is not None for _, t in tests)
        else None
    )
    return {"theta": theta, "agreement": agreement}
