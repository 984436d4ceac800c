"""Review-queue priority and its reason in words, from one round's per-example signals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ZERO_WEIGHT_DISAGREE = ("disagree_both", "disagree_none")


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
    """Priority (higher = review first) and a reason listing every signal that fired."""
    score, reasons = 0.0, []
    votes = [p >= threshold for p in head_probs]
    if len(votes) > 1 and len(set(votes)) > 1:
        score += 3.0
        reasons.append("head disagreement (" + " / ".join(f"{p:.2f}" for p in head_probs) + ")")
    elif agreement in ZERO_WEIGHT_DISAGREE:
        score += 2.5
        reasons.append("head disagreement on trustworthiness (no pseudo-label kept)")
    hist = np.asarray(history, dtype=np.float64)
    if len(hist) >= 2:
        crosses = int((np.sign(hist[1:]) != np.sign(hist[:-1])).sum())
        swing = float(hist.max() - hist.min())
        scale = float(np.abs(hist).mean()) + 1e-6
        if crosses:
            score += 1.5 + 0.25 * min(crosses, 4)
            reasons.append(f"unstable margin (crosses zero {crosses}x)")
        elif swing > 1.0 * scale and swing > 0.5:
            score += 1.0
            reasons.append(f"unstable margin (swings by {swing:.2f})")
    span = max(threshold, 1.0 - threshold)
    closeness = 1.0 - min(1.0, abs(p_harmful - threshold) / span)
    score += closeness
    if closeness > 0.8:
        reasons.append(f"low confidence near threshold (p={p_harmful:.2f}, t={threshold:.2f})")
    if weight >= disagreement_weight > 1.0:
        score += 1.0
        reasons.append(f"up-weighted hard example (weight {weight:g}: an error counts {weight:g}x)")
    if not reasons:
        reasons.append(f"confident (p={p_harmful:.2f})")
    return round(score, 4), "; ".join(reasons)
