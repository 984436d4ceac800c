"""Workbench template helpers: server-rendered sparkline geometry (no inline style, no script)."""

from __future__ import annotations

from itertools import pairwise

from django import template

from annotations.models import Prediction

register = template.Library()

SPARK_W, SPARK_H, SPARK_PAD = 120, 28, 2


@register.simple_tag
def sparkline(values) -> dict | None:
    """Polyline points for ``values`` scaled into a small box, with the y of the zero line."""
    try:
        ys = [float(v) for v in (values or [])]
    except (TypeError, ValueError):
        return None
    if not ys:
        return None
    lo, hi = min(ys + [0.0]), max(ys + [0.0])
    span = (hi - lo) or 1.0
    step = (SPARK_W - 2 * SPARK_PAD) / max(len(ys) - 1, 1)

    def y(v: float) -> float:
        return round(SPARK_H - SPARK_PAD - (v - lo) / span * (SPARK_H - 2 * SPARK_PAD), 1)

    points = " ".join(f"{round(SPARK_PAD + i * step, 1)},{y(v)}" for i, v in enumerate(ys))
    last_x = round(SPARK_PAD + (len(ys) - 1) * step, 1)
    crosses = any((a < 0) != (b < 0) for a, b in pairwise(ys))
    return {
        "points": points,
        "zero_y": y(0.0),
        "w": SPARK_W,
        "h": SPARK_H,
        "last_x": last_x,
        "last_y": y(ys[-1]),
        "last": ys[-1],
        "n": len(ys),
        "crosses": crosses,
        "min": min(ys),
        "max": max(ys),
    }


_AGREEMENT_WORDS = {
    Prediction.Agreement.DISAGREE_BOTH: "The heads disagree and both are confident: one of them is surely wrong.",
    Prediction.Agreement.DISAGREE_ONE: "The heads disagree; only one is confident.",
    Prediction.Agreement.DISAGREE_NONE: "The heads disagree and neither is confident.",
    Prediction.Agreement.LOW_AGREE: "The heads agree, but not all pass their margin cut-off: hard but trusted "
    "(weighted 3 in training, so an error here counts triple).",
    Prediction.Agreement.AGREE_NONE: "The heads agree, but none passes its margin cut-off: no trustworthy "
    "pseudo-label.",
    Prediction.Agreement.FIRST_EPOCH: "Seen only in the first epoch, before margin cut-offs exist: not yet trusted.",
    Prediction.Agreement.HIGH_AGREE: "The heads agree with high confidence (a spot check of a trusted label).",
    Prediction.Agreement.NONE: "Single-head model: no head agreement to report.",
}


@register.filter
def agreement_words(value: str) -> str:
    return _AGREEMENT_WORDS.get(value, value)


@register.filter
def num(value, digits: int = 3) -> str:
    """Fixed-point number without Django's locale-aware floatformat (hot loop on the queue page)."""
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return "–"


# The engine's reasons (ssl_engine.review.review_signal) start with a plain phrase; the numbers
# after it are the technical detail, shown behind a toggle.
_REASON_WORDS = (
    ("the model is unsure", "The model is unsure: its score sits right at the decision threshold."),
    ("the heads disagree", "The model's heads disagree about it."),
    ("the heads agree on no trustworthy label", "The heads agree, but on no label they trust."),
    ("its margin keeps flipping", "Its margin keeps flipping: the model changed its mind between epochs."),
    ("its margin swings", "Its margin swings between epochs."),
    ("spot check", "Spot check: a hard pseudo-label weighted up in training, so an error here counts several times."),
    ("the model is fairly sure", "The model is fairly sure; this is a spot check."),
)


@register.filter
def reason_parts(value: str) -> list[dict[str, str]]:
    """``review_reason`` as a list of {plain, detail}: plain words first, the engine's own text as detail."""
    parts = []
    for raw in (value or "").split("; "):
        raw = raw.strip()
        if not raw:
            continue
        plain = next((words for prefix, words in _REASON_WORDS if raw.startswith(prefix)), raw[:1].upper() + raw[1:])
        parts.append({"plain": plain, "detail": raw})
    return parts


@register.filter
def agreement_weight_label(label: str) -> str:
    """An agreement type's display name with its number said to be a training weight."""
    from annotations.forms.review import agreement_choice_label

    return agreement_choice_label(label)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@register.simple_tag
def explorer_row(it, items_base: str, with_model: bool):
    """One explorer table row, escaped by ``format_html`` (50 rows through the template engine cost ~15 ms)."""
    from django.utils.html import format_html
    from django.utils.safestring import mark_safe

    if it.excluded:
        human = mark_safe('<span class="muted">unusable</span>')
    elif it.human_label:
        human = format_html(
            '<span class="label-{}">{}</span>{}',
            it.human_label,
            it.human_label,
            f" · {it.human_category}" if it.human_category else "",
        )
    else:
        human = mark_safe('<span class="muted">–</span>')
    if it.votes_disagree:
        human = format_html('{} <span class="badge">disagree</span>', human)
    model = ""
    if with_model:
        p = getattr(it, "p_harmful", None)
        model = format_html(
            "<td>{}</td><td>{}</td><td>{}</td>",
            getattr(it, "pseudo_label", None) or "–",
            "–" if p is None else f"{p:.3f}",
            getattr(it, "agreement", None) or "–",
        )
    return format_html(
        '<tr class="explorer-row" data-item="{}"><td><a href="{}{}/">{}</a></td><td>{}</td>'
        '<td class="item-text small" dir="auto">{}</td><td>{}</td><td>{}</td>{}</tr>',
        it.pk,
        items_base,
        it.pk,
        it.pk,
        it.split,
        _clip(it.text, 160),
        human,
        it.annotation_count,
        model,
    )
