"""Harmful-class metrics (sklearn) and the decision-threshold choice (never on test data)."""

from __future__ import annotations

import numpy as np


def binary_metrics(y_true: np.ndarray, p_pos: np.ndarray, threshold: float) -> dict[str, float]:
    """F1/precision/recall/accuracy at ``threshold`` and AUPRC for the positive (harmful) class."""
    from sklearn.metrics import accuracy_score, average_precision_score, precision_recall_fscore_support

    y_true = np.asarray(y_true).astype(int)
    pred = (np.asarray(p_pos) >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y_true, pred, average="binary", pos_label=1, zero_division=0)
    auprc = float(average_precision_score(y_true, p_pos)) if 0 < y_true.sum() < len(y_true) else float("nan")
    return {
        "f1": float(f), "precision": float(p), "recall": float(r), "auprc": auprc,
        "accuracy": float(accuracy_score(y_true, pred)), "threshold": float(threshold),
        "n": int(len(y_true)), "positive_rate": float(y_true.mean()) if len(y_true) else 0.0,
    }


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray) -> float:
    """Threshold maximising harmful F1 on a validation split carved from the labeled data.

    Candidates are midpoints between sorted scores; ties go to the threshold closest to 0.5
    so that a tiny split cannot push it to an extreme.
    """
    y_val = np.asarray(y_val).astype(int)
    p_val = np.asarray(p_val, dtype=np.float64)
    if len(y_val) == 0 or y_val.sum() == 0 or y_val.sum() == len(y_val):
        return 0.5
    s = np.unique(p_val)
    cands = np.unique(np.concatenate([[0.5], (s[:-1] + s[1:]) / 2 if len(s) > 1 else s]))
    best, best_key = 0.5, (-1.0, 0.0)
    for t in cands:
        pred = p_val >= t
        tp = float((pred & (y_val == 1)).sum())
        fp = float((pred & (y_val == 0)).sum())
        fn = float((~pred & (y_val == 1)).sum())
        f1 = 2 * tp / max(1.0, 2 * tp + fp + fn)
        key = (round(f1, 9), -abs(t - 0.5))
        if key > best_key:
            best, best_key = float(t), key
    return best
