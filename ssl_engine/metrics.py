"""Harmful-class metrics (scikit-learn), with the confusion matrix and a compact PR curve."""

from __future__ import annotations

import numpy as np

PR_CURVE_POINTS = 101


def binary_metrics(y_true: np.ndarray, p_pos: np.ndarray, threshold: float) -> dict:
    """F1/precision/recall/accuracy at ``threshold``, AUPRC, confusion counts and a PR curve.

    ``pr_curve`` holds at most ``PR_CURVE_POINTS`` (precision, recall, threshold) points,
    evenly spaced along the curve, for plotting.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        precision_recall_curve,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(y_true).astype(int)
    p_pos = np.asarray(p_pos, dtype=np.float64)
    pred = (p_pos >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y_true, pred, average="binary", pos_label=1, zero_division=0)
    both = 0 < y_true.sum() < len(y_true)
    auprc = float(average_precision_score(y_true, p_pos)) if both else float("nan")
    tn, fp, fn, tp = (int(x) for x in confusion_matrix(y_true, pred, labels=[0, 1]).ravel())
    curve = {"precision": [], "recall": [], "thresholds": []}
    if both:
        prec, rec, thr = precision_recall_curve(y_true, p_pos)
        prec, rec = prec[:-1], rec[:-1]  # the last point (recall 0, precision 1) has no threshold
        keep = np.unique(np.linspace(0, len(thr) - 1, min(PR_CURVE_POINTS, len(thr))).round().astype(int))
        curve = {
            "precision": [round(float(x), 4) for x in prec[keep]],
            "recall": [round(float(x), 4) for x in rec[keep]],
            "thresholds": [round(float(x), 6) for x in thr[keep]],
        }
    return {
        "f1": float(f),
        "precision": float(p),
        "recall": float(r),
        "auprc": auprc,
        "accuracy": float(accuracy_score(y_true, pred)),
        "threshold": float(threshold),
        "n": int(len(y_true)),
        "positive_rate": float(y_true.mean()) if len(y_true) else 0.0,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "pr_curve": curve,
    }
