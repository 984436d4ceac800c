"""Pseudo-label policies that several algorithms compose (USB's hooks, as small strategy objects).

- :class:`DistributionAlignment`: rescales weak-view probabilities so the pseudo-label class
  mix follows the labeled prior (ReMixMatch / USB ``DistAlignEMAHook``).
- :func:`confidence_mask`: FixMatch's fixed threshold.
- :class:`SelfAdaptiveThreshold`: FreeMatch's global × class-local threshold.
- :class:`CurriculumMask`: FlexMatch's class-adaptive threshold (used inside MarginMatch).
- :func:`aum_update`: the per-example running average of pseudo-margins (MarginMatch's AUM).

Imbalance: FreeMatch and FlexMatch scale each class's threshold by how often the model predicts
that class *relative to the most predicted one*, which on a 13 %-harmful pool lowers the harmful
threshold to a fraction of the global one and lets nearly every harmful guess through. With
``relative_to_prior`` the class frequencies are divided by the labeled prior first, so a class
predicted exactly as often as it occurs gets the global threshold (the papers' balanced case is
unchanged: a uniform prior divides every class by the same number).
"""

from __future__ import annotations

import numpy as np

from ssl_engine.lazy import torch


class DistributionAlignment:
    """Weak-view logits shifted so that pseudo-labels follow the labeled class mix.

    ``mode="mean"`` is ReMixMatch's alignment: p̃ = Normalise(p · π_target / p̄_model), p̄_model an
    EMA of the batch mean of p. It matches *mean probabilities*, not the share of hard labels:
    a model that spreads harmful mass over many items at p = 0.2–0.4 keeps the argmax-harmful
    share far below the prior (3 % instead of 13 % on ToxicChat), so hard pseudo-labels call
    most harmful items unharmful. ``mode="quantile"`` (binary tasks) instead subtracts the
    running (1 − π)-quantile of the harmful log-odds over the last ``window`` weak views, so the
    top π share of the pool is pseudo-labeled harmful; other tasks fall back to ``mean``.
    """

    def __init__(self, target: np.ndarray, momentum: float, mode: str = "mean", window: int = 2048) -> None:
        self.target = np.asarray(target, dtype=np.float64)
        self.m = float(momentum)
        self.mode = mode if len(self.target) == 2 else "mean"
        self.p_model: np.ndarray | None = None
        self.window = window
        self._odds: list[np.ndarray] = []
        self.bias = 0.0

    def update(self, probs) -> None:
        mean = probs.detach().float().mean(0).cpu().numpy().astype(np.float64)
        self.p_model = mean if self.p_model is None else self.m * self.p_model + (1 - self.m) * mean

    def log_ratio(self, device):
        """log π_target − log p̄_model: added to logits it performs the alignment."""
        ratio = np.log(self.target + 1e-6) - np.log(self.p_model + 1e-6)
        return torch.as_tensor(ratio, dtype=torch.float32, device=device)

    def align_logits(self, logits):
        """Update the running statistics with ``logits`` (B, C) and return the aligned logits."""
        self.update(logits.softmax(-1))
        if self.mode != "quantile":
            return logits + self.log_ratio(logits.device)
        odds = (logits[:, 1] - logits[:, 0]).detach().float().cpu().numpy()
        self._odds.append(odds)
        while sum(len(o) for o in self._odds) - len(self._odds[0]) >= self.window:
            self._odds.pop(0)
        self.bias = float(np.quantile(np.concatenate(self._odds), 1.0 - self.target[1]))
        shift = torch.tensor([0.0, -self.bias], dtype=logits.dtype, device=logits.device)
        return logits + shift


class ClassBalance:
    """Per-example multipliers that give every class the same total weight in the unlabeled loss.

    h = EMA of the class histogram of the *used* pseudo-labels (initialised to the labeled prior);
    the multiplier of a pseudo-label of class c is (1/C) / h_c, clipped to ``max_weight``, whose
    mean over used pseudo-labels is 1. Without it, 2,000 confident "unharmful" pseudo-labels at
    97 % precision outweigh 50 "harmful" ones, and the ~60 harmful items among them teach the
    model to miss exactly the hard harmful cases (the labeled loss is class-weighted for the
    same reason).
    """

    def __init__(self, prior: np.ndarray, momentum: float, max_weight: float = 20.0) -> None:
        self.hist = np.asarray(prior, dtype=np.float64).copy()
        self.m = float(momentum)
        self.max_weight = max_weight

    def __call__(self, targets, mask):
        """Multipliers (B,) for pseudo-labels ``targets`` under ``mask``; updates the histogram first."""
        t = targets.detach().cpu().numpy()
        used = mask.detach().cpu().numpy() > 0
        if used.any():
            batch = np.bincount(t[used], minlength=len(self.hist)) / used.sum()
            self.hist = self.m * self.hist + (1 - self.m) * batch
        mult = np.minimum((1.0 / len(self.hist)) / np.maximum(self.hist, 1e-6), self.max_weight)
        return torch.as_tensor(mult, dtype=mask.dtype, device=mask.device)[targets]


def confidence_mask(probs, threshold: float):
    """FixMatch: 1[max p ≥ τ]."""
    return (probs.max(-1).values >= threshold).float()


def prior_normalised(freq: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    """Class frequencies divided by the prior and max-normalised (the class term of FreeMatch/FlexMatch)."""
    f = np.asarray(freq, dtype=np.float64)
    if prior is not None:
        f = f / np.maximum(np.asarray(prior, dtype=np.float64), 1e-6)
    return f / max(f.max(), 1e-12)


class SelfAdaptiveThreshold:
    """FreeMatch: τ_t = EMA(mean max p), p̃_t = EMA(mean p); mask = max p ≥ τ_t · MaxNorm(p̃_t)[ŷ].

    τ_0 = p̃_0 = 1/C as in the paper; with ``prior`` the class term is MaxNorm(p̃_t / π).
    """

    def __init__(self, n_classes: int, momentum: float, prior: np.ndarray | None = None) -> None:
        self.m = float(momentum)
        self.tau = 1.0 / n_classes
        self.p_tilde = np.full(n_classes, 1.0 / n_classes)
        self.label_hist = np.full(n_classes, 1.0 / n_classes)  # EMA of the pseudo-label histogram
        self.prior = prior

    def update(self, probs) -> None:
        p = probs.detach().float().cpu().numpy().astype(np.float64)
        self.tau = self.m * self.tau + (1 - self.m) * float(p.max(-1).mean())
        self.p_tilde = self.m * self.p_tilde + (1 - self.m) * p.mean(0)
        hist = np.bincount(p.argmax(-1), minlength=len(self.p_tilde)) / max(1, len(p))
        self.label_hist = self.m * self.label_hist + (1 - self.m) * hist

    def class_thresholds(self) -> np.ndarray:
        return self.tau * prior_normalised(self.p_tilde, self.prior)

    def mask(self, probs):
        maxp, yhat = probs.max(-1)
        thr = torch.as_tensor(self.class_thresholds(), dtype=maxp.dtype, device=maxp.device)
        return (maxp >= thr[yhat]).float()


class CurriculumMask:
    """FlexMatch: σ_c = #examples whose last confident prediction is c; β_c = σ_c / max(max σ, #unused);
    mask = max p ≥ τ · β_ŷ / (2 − β_ŷ). With ``prior`` the class counts are divided by π first."""

    def __init__(self, n_examples: int, n_classes: int, threshold: float, prior: np.ndarray | None = None) -> None:
        self.selected = np.full(n_examples, -1, dtype=np.int64)
        self.n_classes = n_classes
        self.threshold = float(threshold)
        self.prior = prior

    def update(self, idx: np.ndarray, probs, exclude: np.ndarray | None = None) -> None:
        maxp, yhat = probs.max(-1)
        conf = (maxp > self.threshold).cpu().numpy()
        if exclude is not None:
            conf &= ~exclude
        self.selected[idx[conf]] = yhat.cpu().numpy()[conf]

    def beta(self) -> np.ndarray:
        sigma = np.bincount(self.selected[self.selected >= 0], minlength=self.n_classes).astype(np.float64)
        unused = float((self.selected < 0).sum())
        if self.prior is not None:
            sigma = sigma / np.maximum(self.prior, 1e-6) * (1.0 / self.n_classes)
        return sigma / max(sigma.max(), unused, 1.0)

    def mask(self, probs):
        maxp, yhat = probs.max(-1)
        b = torch.as_tensor(self.beta(), dtype=maxp.dtype, device=maxp.device)[yhat]
        return (maxp >= self.threshold * b / (2 - b)).float()


def aum_update(aum: np.ndarray, seen: np.ndarray, idx: np.ndarray, margins: np.ndarray, delta: float) -> None:
    """AUM ← m·δ/(1+t) + AUM·(1 − δ/(1+t)) for rows ``idx`` (t = times seen before); in place."""
    t = seen[idx].astype(np.float64)
    r = (delta / (1.0 + t))[:, None]
    aum[idx] = margins * r + aum[idx] * (1.0 - r)
    seen[idx] += 1
