"""The review queue: which pool item a reviewer's label is worth most on, and why, in words.

The order aims at the harmful-F1 gained per reviewed label. An item's base value adds up:

- closeness of its score to the decision threshold, in log-odds (the classic uncertainty signal,
  and the largest term: a label there moves the boundary);
- the heads disagreeing about it (MultiMatch), or agreeing on a pseudo-label none of them trusts;
- a margin that flips or swings across epochs (the model keeps changing its mind);
- an up-weighted pseudo-label (an error there counts several times), as a spot check.

Then :func:`queue_order` spreads the top of the queue over different kinds of items
(maximal marginal relevance on the model's own text representations), so a batch of reviews
is not spent on twenty copies of one jailbreak template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ZERO_WEIGHT_DISAGREE = ("disagree_both", "disagree_none")
CLOSENESS_SCALE = 1.5  # log-odds distance at which closeness falls to 1/e
QUEUE_DIVERSITY_TOP = 500
QUEUE_REDUNDANCY = 0.3


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def review_signal(
    *,
    p_harmful: float,
    head_probs: Sequence[float],
    threshold: float,
    history: Sequence[float],
    weight: float,
    agreement: str,
    disagreement_weight: float = 3.0,
) -> tuple[float, str]:
    """Base value (higher = review first) and a plain-language reason listing every signal that fired."""
    closeness = math.exp(-abs(_logit(p_harmful) - _logit(threshold)) / CLOSENESS_SCALE)
    score, reasons = 2.0 * closeness, []
    if closeness > 0.5:
        side = "above" if p_harmful >= threshold else "below"
        reasons.append(f"the model is unsure: p(harmful) {p_harmful:.2f} is just {side} the threshold {threshold:.2f}")
    votes = [p >= threshold for p in head_probs]
    if len(votes) > 1 and len(set(votes)) > 1:
        score += 1.0
        reasons.append("the heads disagree (" + " / ".join(f"{p:.2f}" for p in head_probs) + ")")
    elif agreement in ZERO_WEIGHT_DISAGREE:
        score += 0.5
        reasons.append("the heads agree on no trustworthy label (no pseudo-label was kept)")
    hist = np.asarray(history, dtype=np.float64)
    if len(hist) >= 2:
        crosses = int((np.sign(hist[1:]) != np.sign(hist[:-1])).sum())
        swing = float(hist.max() - hist.min())
        scale = float(np.abs(hist).mean()) + 1e-6
        if crosses:
            score += 0.5 + 0.1 * min(crosses, 4)
            reasons.append(f"its margin keeps flipping (crossed zero {crosses}x across epochs)")
        elif swing > 1.0 * scale and swing > 0.5:
            score += 0.25
            reasons.append(f"its margin swings (by {swing:.2f} across epochs)")
    if weight >= disagreement_weight > 1.0:
        score += 0.25
        reasons.append(f"spot check: a hard pseudo-label trained at weight {weight:g}, so an error counts {weight:g}x")
    if not reasons:
        reasons.append(f"the model is fairly sure (p(harmful) {p_harmful:.2f}, threshold {threshold:.2f})")
    return round(score, 4), "; ".join(reasons)


def queue_order(
    values: np.ndarray,
    features: np.ndarray | None,
    *,
    top: int = QUEUE_DIVERSITY_TOP,
    redundancy: float = QUEUE_REDUNDANCY,
) -> np.ndarray:
    """Final review priorities: ``values`` re-ordered so the top ``top`` items are diverse.

    Returns priorities whose descending order is the queue: the MMR picks first (priorities just
    above every other item's, decreasing in pick order), then the rest by their value.
    """
    from ssl_engine.selection import diverse_order

    values = np.asarray(values, dtype=np.float64)
    if features is None or len(values) <= 1 or redundancy <= 0:
        return values.copy()
    order = diverse_order(values, features, top=top, redundancy=redundancy)
    k = min(top, len(values))
    out = values.copy()
    rest = order[k:]
    floor = float(values[rest].max()) if len(rest) else float(values.min())
    out[order[:k]] = floor + (k - np.arange(k)) * 1e-3
    return np.round(out, 4)
