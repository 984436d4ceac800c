"""Decision-threshold strategies (a registry), never fed evaluation data.

Each strategy maps a :class:`ThresholdInputs` (scores of a labeled validation split when one
was carved, the unlabeled pool's scores, the harmful prior of the human labels) to a
threshold on p(harmful) and a one-line note of how it was reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ssl_engine.registries import lookup, registrar


@dataclass(frozen=True)
class ThresholdInputs:
    pool_scores: np.ndarray  # p(harmful) of every unlabeled pool item
    prior: float  # harmful share estimated from the human labels
    fixed: float = 0.5
    val_scores: np.ndarray | None = None  # p(harmful) of the held-out labeled validation split
    val_labels: np.ndarray | None = None  # 1 = harmful


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    strategy: str
    note: str = ""


Strategy = Callable[[ThresholdInputs], ThresholdChoice]
THRESHOLD_STRATEGIES: dict[str, Strategy] = {}
_register = registrar(THRESHOLD_STRATEGIES, "threshold strategy")


@_register("fixed")
def fixed_threshold(inp: ThresholdInputs) -> ThresholdChoice:
    """The configured constant."""
    return ThresholdChoice(float(inp.fixed), "fixed")


@_register("val_f1")
def val_f1_threshold(inp: ThresholdInputs) -> ThresholdChoice:
    """The harmful-F1-maximising cut-off on the held-out labeled validation split."""
    if inp.val_scores is None or inp.val_labels is None or len(inp.val_labels) == 0:
        raise ValueError("val_f1 needs a labeled validation split (too few labels to carve one)")
    return ThresholdChoice(
        f1_best_threshold(inp.val_labels, inp.val_scores),
        "val_f1",
        f"F1-best on {len(inp.val_labels)} held-out labeled items",
    )


@_register("prior_match")
def prior_match_threshold(inp: ThresholdInputs) -> ThresholdChoice:
    """The cut-off that flags the labeled harmful share of the unlabeled pool.

    Ties (saturated scores) are resolved by taking the distinct score whose flagged share is
    closest to the prior, so the result is always a real score boundary, never a fallback.
    """
    scores = np.asarray(inp.pool_scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("prior_match needs unlabeled pool scores")
    prior = float(np.clip(inp.prior, 0.0, 1.0))
    cands = np.unique(scores)
    # share flagged (score >= c) for every candidate cut-off, from the sorted scores
    flagged = 1.0 - np.searchsorted(np.sort(scores), cands, side="left") / len(scores)
    best = int(np.argmin(np.abs(flagged - prior)))
    threshold = float(cands[best])
    return ThresholdChoice(
        threshold,
        "prior_match",
        f"flags {flagged[best]:.1%} of {len(scores)} pool items (labeled harmful share {prior:.1%})",
    )


def calibrate_in_the_large(p: np.ndarray, prior: float) -> np.ndarray:
    """Scores shifted in log-odds by the one constant that makes their mean equal ``prior``.

    A model trained with class-balanced weights scores as if half the pool were harmful; the
    shift maps its scores onto the labeled prior without any held-out label (bisection).
    """
    z = np.log(np.clip(p, 1e-7, 1 - 1e-7)) - np.log(np.clip(1 - p, 1e-7, 1 - 1e-7))
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(z + mid)))).mean() > prior:
            hi = mid
        else:
            lo = mid
    return 1 / (1 + np.exp(-(z + (lo + hi) / 2)))


@_register("expected_f1")
def expected_f1_threshold(inp: ThresholdInputs) -> ThresholdChoice:
    """The cut-off maximising the pool's *expected* harmful F1 under prior-calibrated scores.

    With q the calibrated scores sorted high to low, flagging the top k gives expected
    TP = Σ_{i≤k} q_i, FP = k − TP, FN = Σ q − TP, so E[F1](k) ≈ 2·TP / (k + Σ q). Where the
    prior is high or the scores are spread (many items at q 0.3-0.7), this flags more than
    the prior (F1 rewards recall there); where scores are sharp it lands near prior_match.
    """
    scores = np.asarray(inp.pool_scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("expected_f1 needs unlabeled pool scores")
    q = calibrate_in_the_large(scores, float(np.clip(inp.prior, 1e-4, 1 - 1e-4)))
    order = np.argsort(-q, kind="stable")
    tp = np.cumsum(q[order])
    f1 = 2 * tp / (np.arange(1, len(q) + 1) + q.sum())
    k = int(np.argmax(f1))
    threshold = float(scores[order[k]])
    flagged = float((scores >= threshold).mean())
    return ThresholdChoice(
        threshold,
        "expected_f1",
        f"flags {flagged:.1%} of {len(scores)} pool items (expected F1 {f1[k]:.2f}; "
        f"labeled harmful share {inp.prior:.1%})",
    )


def choose_threshold(name: str, inp: ThresholdInputs) -> ThresholdChoice:
    """Run strategy ``name``; ``auto`` = val_f1 when a validation split exists, else prior_match."""
    if name == "auto":
        has_val = inp.val_labels is not None and len(inp.val_labels) > 0
        name = "val_f1" if has_val else ("prior_match" if len(inp.pool_scores) else "fixed")
    return lookup(THRESHOLD_STRATEGIES, "threshold strategy", name)(inp)


def f1_best_threshold(y_val: np.ndarray, p_val: np.ndarray) -> float:
    """Threshold maximising harmful F1; candidates are midpoints between sorted scores, ties go
    to the candidate closest to 0.5 so that a tiny split cannot push it to an extreme."""
    y = np.asarray(y_val).astype(int)
    p = np.asarray(p_val, dtype=np.float64)
    if len(y) == 0 or y.sum() == 0 or y.sum() == len(y):
        return 0.5
    s = np.unique(p)
    cands = np.unique(np.concatenate([[0.5], (s[:-1] + s[1:]) / 2 if len(s) > 1 else s]))
    pred = p[None, :] >= cands[:, None]
    tp = (pred & (y == 1)).sum(1)
    fp = (pred & (y == 0)).sum(1)
    fn = ((~pred) & (y == 1)).sum(1)
    f1 = np.round(2 * tp / np.maximum(1, 2 * tp + fp + fn), 9)
    best = np.flatnonzero(f1 == f1.max())
    return float(cands[best[np.argmin(np.abs(cands[best] - 0.5))]])


THRESHOLD_STRATEGY_NAMES: tuple[str, ...] = tuple(THRESHOLD_STRATEGIES)
