"""Robust UU learning: iterative refinement of noisy binary harm labels (ALGORITHMS.md).

Noisy labels (an LLM judge, a first model) split the corpus into U_p (pseudo-harmful,
true harmful rate θ_p) and U_n (pseudo-unharmful, θ_n < θ_p). With a scorer g and the
sigmoid loss ℓ, the unbiased UU risk is

    R = a·R⁺_{U_p} − c·R⁺_{U_n} + d·R⁻_{U_n} − b·R⁻_{U_p}
    a = π(1−θ_n)/(θ_p−θ_n), c = π(1−θ_p)/(θ_p−θ_n),
    d = (1−π)θ_p/(θ_p−θ_n), b = (1−π)θ_n/(θ_p−θ_n)

and the robust risk applies the generalized leaky ReLU f (x for x ≥ 0, λx for x < 0,
λ < 0) to each partial risk, which turns a negative partial risk (over-fitting) back
positive. The loop: estimate θ_p, θ_n from the human labels that fall in U_p / U_n →
train g with the (robust) risk on frozen embeddings → relabel everything with
sign(g) → repeat until few labels change.

Entry points: ``refine_labels`` and the ``REFINERS`` registry (``"uu_refine"``),
which the app runs as a round type. Binary only; harmful = 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssl_engine.registries import lookup, registrar

VARIANTS = ("robust", "unbiased", "pn")


class UUError(ValueError):
    """UU refinement cannot run on these inputs (θ_p ≈ θ_n, an empty set, no human labels...)."""


# --------------------------------------------------------------------------- risk


@dataclass(frozen=True)
class UUCoefficients:
    a: float
    b: float
    c: float
    d: float
    prior: float
    theta_p: float
    theta_n: float


def uu_coefficients(prior: float, theta_p: float, theta_n: float, *, min_gap: float = 1e-3) -> UUCoefficients:
    """The a, b, c, d of the UU risk; raises ``UUError`` when θ_p − θ_n ≤ ``min_gap``."""
    for name, v in (("prior", prior), ("theta_p", theta_p), ("theta_n", theta_n)):
        if not 0.0 <= v <= 1.0:
            raise UUError(f"{name} must lie in [0, 1], got {v}")
    gap = theta_p - theta_n
    if gap <= min_gap:
        raise UUError(
            f"θ_p ({theta_p:.3f}) must exceed θ_n ({theta_n:.3f}) by more than {min_gap}: "
            "the pseudo-harmful and pseudo-unharmful sets are not distinguishable, so the "
            "UU risk is undefined. Use better noisy labels or check the human labels."
        )
    return UUCoefficients(
        a=prior * (1 - theta_n) / gap,
        b=(1 - prior) * theta_n / gap,
        c=prior * (1 - theta_p) / gap,
        d=(1 - prior) * theta_p / gap,
        prior=prior,
        theta_p=theta_p,
        theta_n=theta_n,
    )


def sigmoid_loss(z, y: float):
    """ℓ(z, y) = sigmoid(−y·z), y ∈ {+1, −1} (bounded, as the UU papers use)."""
    import torch

    return torch.sigmoid(-y * z)


def leaky(x, lam: float = -0.001):
    """Generalized leaky ReLU f: x for x ≥ 0, λx for x < 0."""
    import torch

    return torch.where(x >= 0, x, lam * x)


def uu_partial_risks(g_up, g_un, coef: UUCoefficients, loss: Callable = sigmoid_loss):
    """(positive part a·R⁺_{U_p} − c·R⁺_{U_n}, negative part d·R⁻_{U_n} − b·R⁻_{U_p})."""
    pos = coef.a * loss(g_up, 1.0).mean() - coef.c * loss(g_un, 1.0).mean()
    neg = coef.d * loss(g_un, -1.0).mean() - coef.b * loss(g_up, -1.0).mean()
    return pos, neg


def uu_risk(
    g_up, g_un, coef: UUCoefficients, *, robust: bool = False, lam: float = -0.001, loss: Callable = sigmoid_loss
):
    """The unbiased UU risk, or the robust one (f applied to each partial risk)."""
    if robust and lam >= 0:
        raise UUError(f"the robust risk needs λ < 0, got {lam}")
    pos, neg = uu_partial_risks(g_up, g_un, coef, loss)
    if robust:
        return leaky(pos, lam) + leaky(neg, lam)
    return pos + neg


# --------------------------------------------------------------------------- θ estimation


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class ThetaEstimate:
    """θ_p, θ_n from the human labels in U_p / U_n, with Wilson intervals."""

    theta_p: float
    theta_n: float
    interval_p: tuple[float, float]
    interval_n: tuple[float, float]
    n_p: int  # human-labeled items in U_p
    n_n: int
    pos_p: int  # of which harmful
    pos_n: int
    size_p: int  # |U_p|
    size_n: int
    prior: float  # π = θ_p·|U_p|/N + θ_n·|U_n|/N unless given
    separated: bool  # the two intervals do not overlap
    labels_needed: int  # human labels (spread at random) for intervals of half-width ≤ gap/2


def estimate_thetas(
    labels: np.ndarray | Sequence[int],
    human: Mapping[int, int],
    *,
    confidence: float = 0.95,
    prior: float | None = None,
) -> ThetaEstimate:
    """Estimate θ_p, θ_n from ``human`` ({index: true label}) and the current ``labels``.

    Raises ``UUError`` when a set is empty or holds no human-labeled item.
    """
    labels = np.asarray(labels).astype(int)
    size_p, size_n = int((labels == 1).sum()), int((labels == 0).sum())
    if size_p == 0 or size_n == 0:
        empty = "U_p (pseudo-harmful)" if size_p == 0 else "U_n (pseudo-unharmful)"
        raise UUError(f"{empty} is empty: every item has the same noisy label")
    in_p = [y for i, y in human.items() if labels[i] == 1]
    in_n = [y for i, y in human.items() if labels[i] == 0]
    if not in_p or not in_n:
        which = "U_p" if not in_p else "U_n"
        raise UUError(f"no human-labeled item falls in {which}; label a few items from it to estimate θ")
    n_p, n_n, pos_p, pos_n = len(in_p), len(in_n), int(sum(in_p)), int(sum(in_n))
    tp, tn = pos_p / n_p, pos_n / n_n
    ip, in_ = wilson_interval(pos_p, n_p, confidence), wilson_interval(pos_n, n_n, confidence)
    n_total = size_p + size_n
    pi = prior if prior is not None else (tp * size_p + tn * size_n) / n_total
    gap = tp - tn
    if gap > 0:
        z = _z(confidence)
        h = gap / 2
        need_p = z * z * max(tp * (1 - tp), 0.25 / max(n_p, 1)) / (h * h)
        need_n = z * z * max(tn * (1 - tn), 0.25 / max(n_n, 1)) / (h * h)
        needed = int(math.ceil(max(need_p * n_total / size_p, need_n * n_total / size_n)))
    else:
        needed = -1  # no gap: more labels do not make the sets separable
    return ThetaEstimate(
        theta_p=tp,
        theta_n=tn,
        interval_p=ip,
        interval_n=in_,
        n_p=n_p,
        n_n=n_n,
        pos_p=pos_p,
        pos_n=pos_n,
        size_p=size_p,
        size_n=size_n,
        prior=float(pi),
        separated=ip[0] > in_[1],
        labels_needed=needed,
    )


# --------------------------------------------------------------------------- scorer


@dataclass(frozen=True)
class ScorerConfig:
    hidden: int = 0  # 0 = linear head; > 0 = one hidden layer MLP
    epochs: int = 300  # full-batch steps (embeddings are small; this is fast on CPU)
    lr: float = 5e-2
    weight_decay: float = 1e-4
    standardize: bool = True


def train_scorer(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    variant: str = "robust",
    coef: UUCoefficients | None = None,
    lam: float = -0.001,
    config: ScorerConfig = ScorerConfig(),
    seed: int = 0,
) -> np.ndarray:
    """Fit g on frozen embeddings ``x`` and return its scores g(x) (> 0 = harmful).

    ``variant``: ``"robust"``/``"unbiased"`` train on the UU risk with U_p = labels 1,
    U_n = labels 0 (``coef`` required); ``"pn"`` treats the labels as clean (sigmoid
    loss, class prior as in the data).
    """
    import torch

    if variant not in VARIANTS:
        raise UUError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels).astype(int)
    if config.standardize:
        mu, sd = x.mean(0, keepdims=True), x.std(0, keepdims=True) + 1e-6
        x = (x - mu) / sd
    dim = x.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if config.hidden > 0:
            model = torch.nn.Sequential(
                torch.nn.Linear(dim, config.hidden), torch.nn.ReLU(), torch.nn.Linear(config.hidden, 1)
            )
        else:
            model = torch.nn.Linear(dim, 1)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    xt = torch.from_numpy(x)
    up, un = torch.from_numpy(labels == 1), torch.from_numpy(labels == 0)
    y = torch.from_numpy(np.where(labels == 1, 1.0, -1.0).astype(np.float32))
    if variant != "pn" and coef is None:
        raise UUError("UU training needs coefficients (θ_p, θ_n, π)")
    for _ in range(config.epochs):
        opt.zero_grad()
        z = model(xt).squeeze(-1)
        if variant == "pn":
            risk = sigmoid_loss(z, y).mean()
        else:
            risk = uu_risk(z[up], z[un], coef, robust=variant == "robust", lam=lam)
        risk.backward()
        opt.step()
    with torch.inference_mode():
        return model(xt).squeeze(-1).numpy().astype(np.float64)


# --------------------------------------------------------------------------- loop


@dataclass(frozen=True)
class UUIteration:
    iteration: int  # 1-based; the noisy start is iteration 0 in ``RefineResult.labels_history``
    labels: np.ndarray  # labels after this iteration
    scores: np.ndarray  # g(x)
    theta: ThetaEstimate | None  # estimate used to train this iteration (None for pn)
    coefficients: UUCoefficients | None
    n_changed: int
    frac_changed: float
    human_agreement: float  # share of human-labeled items whose new label matches (a sanity signal)


@dataclass
class RefineResult:
    labels: np.ndarray  # final refined labels (0/1)
    scores: np.ndarray  # final g(x)
    iterations: list[UUIteration]
    initial_theta: ThetaEstimate | None
    converged: bool
    stopped_reason: str  # "converged" | "max_iterations" | "<UUError message>"
    variant: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def labels_history(self) -> list[np.ndarray]:
        return [it.labels for it in self.iterations]


def refine_labels(
    embeddings: np.ndarray,
    noisy_labels: np.ndarray | Sequence[int],
    human: Mapping[int, int],
    *,
    variant: str = "robust",
    iterations: int = 5,
    tol: float = 0.005,
    lam: float = -0.001,
    prior: float | None = None,
    theta_p: float | None = None,
    theta_n: float | None = None,
    confidence: float = 0.95,
    min_gap: float = 0.02,
    scorer: ScorerConfig | Mapping[str, Any] | None = None,
    fix_prior: bool = False,
    select: str = "best_human",
    seed: int = 0,
) -> RefineResult:
    """Iteratively refine ``noisy_labels`` with robust UU learning (or a baseline).

    Args:
        embeddings: (N, dim) frozen embeddings of all items.
        noisy_labels: (N,) 0/1 start labels (LLM judge, first model...).
        human: {item index: true 0/1 label} for the human-labeled seed items; they
            estimate θ_p, θ_n each iteration and are otherwise treated like the rest.
        variant: ``"robust"`` (default), ``"unbiased"`` (plain UU) or ``"pn"`` (train
            on the current labels as if clean).
        iterations: at most this many train → relabel rounds.
        tol: stop when the fraction of labels that changed falls below it.
        prior, theta_p, theta_n: fix π / θ instead of estimating them (θ fixed only
            for the first iteration).
        min_gap: θ_p − θ_n must exceed it, else ``UUError`` (first iteration) or stop.
        fix_prior: estimate π once from the noisy start and keep it (π is a property of
            the corpus); off by default: on ToxicChat it did not stop the drift below.
        select: ``"best_human"`` (default) returns the iteration whose labels agree best
            with the human labels (earliest on ties); ``"last"`` returns the last one (the
            paper's loop). On ToxicChat with 50 labels, iteration 1 is reliably the best
            and later iterations drift as θ_p is re-estimated from the few human items
            left in a shrinking U_p (benchmarks/results/uu_refine.md).

    Returns the per-iteration labels, θ estimates and changes. Raises ``UUError`` when
    the start is unusable (a set empty, no human label in a set, θ_p ≈ θ_n).
    """
    x = np.asarray(embeddings)
    labels = np.asarray(noisy_labels).astype(int)
    if x.ndim != 2 or x.shape[0] != labels.shape[0]:
        raise UUError(f"embeddings {x.shape} and labels {labels.shape} disagree")
    if not set(np.unique(labels)) <= {0, 1}:
        raise UUError("noisy labels must be 0/1 (binary only)")
    if variant not in VARIANTS:
        raise UUError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    bad = [i for i in human if not 0 <= i < len(labels)]
    if bad:
        raise UUError(f"human-labeled indices out of range: {bad[:5]}")
    if isinstance(scorer, Mapping):
        scorer = ScorerConfig(**scorer)
    scorer = scorer or ScorerConfig()

    if select not in ("last", "best_human"):
        raise UUError(f"select must be 'last' or 'best_human', got {select!r}")
    fixed_pi: list[float] = [] if prior is None else [prior]

    def estimate(lbl: np.ndarray, first: bool) -> tuple[ThetaEstimate, UUCoefficients]:
        est = estimate_thetas(lbl, human, confidence=confidence, prior=fixed_pi[0] if fixed_pi else None)
        tp = theta_p if first and theta_p is not None else est.theta_p
        tn = theta_n if first and theta_n is not None else est.theta_n
        pi = fixed_pi[0] if fixed_pi else (tp * est.size_p + tn * est.size_n) / len(lbl)
        if fix_prior and not fixed_pi:
            fixed_pi.append(pi)
        return est, uu_coefficients(pi, tp, tn, min_gap=min_gap)

    initial = None
    if variant != "pn":
        initial, _ = estimate(labels, True)  # raises UUError on an unusable start
    history: list[UUIteration] = []
    current = labels
    reason = "max_iterations"
    converged = False
    scores = np.zeros(len(labels))
    for k in range(1, iterations + 1):
        est = coef = None
        if variant != "pn":
            try:
                est, coef = estimate(current, k == 1)
            except UUError as exc:
                if k == 1:
                    raise
                reason = f"stopped: {exc}"
                break
        else:
            if current.min() == current.max():
                reason = "stopped: all labels are equal"
                break
        scores = train_scorer(x, current, variant=variant, coef=coef, lam=lam, config=scorer, seed=seed + k)
        new = (scores > 0).astype(int)
        changed = int((new != current).sum())
        frac = changed / len(current)
        agree = float(np.mean([new[i] == y for i, y in human.items()])) if human else float("nan")
        history.append(UUIteration(k, new, scores, est, coef, changed, frac, agree))
        current = new
        if frac < tol:
            reason, converged = "converged", True
            break
    if select == "best_human" and history and human:
        best = max(history, key=lambda it: (it.human_agreement, -it.iteration))
        current, scores = best.labels, best.scores
        reason += f"; selected iteration {best.iteration} (human agreement {best.human_agreement:.2f})"
    return RefineResult(
        labels=current,
        scores=scores,
        iterations=history,
        initial_theta=initial,
        converged=converged,
        stopped_reason=reason,
        variant=variant,
        config={
            "iterations": iterations,
            "tol": tol,
            "lam": lam,
            "min_gap": min_gap,
            "fix_prior": fix_prior,
            "select": select,
            "seed": seed,
        },
    )


# --------------------------------------------------------------------------- registry

Refiner = Callable[[np.ndarray, np.ndarray, Mapping[int, int], Mapping[str, Any], int], RefineResult]
REFINERS: dict[str, Refiner] = {}


refiner = registrar(REFINERS, "refiner")


def get_refiner(name: str) -> Refiner:
    return lookup(REFINERS, "refiner", name)


_REFINE_KEYS = {
    "variant", "iterations", "tol", "lam", "prior", "theta_p", "theta_n", "confidence", "min_gap", "scorer",
    "fix_prior", "select",
}  # fmt: skip


@refiner("uu_refine")
def uu_refine(
    embeddings: np.ndarray,
    noisy_labels: np.ndarray,
    human: Mapping[int, int],
    config: Mapping[str, Any],
    seed: int,
) -> RefineResult:
    """Robust UU label refinement as a round type; ``config`` holds ``refine_labels`` options."""
    unknown = set(config) - _REFINE_KEYS
    if unknown:
        raise ValueError(f"unknown uu_refine config keys: {sorted(unknown)}")
    return refine_labels(embeddings, noisy_labels, human, seed=seed, **dict(config))
