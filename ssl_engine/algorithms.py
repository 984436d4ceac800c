"""One registry of SSL algorithms; each overrides ``train_step`` over the shared trainer.

Definitions follow ALGORITHMS.md exactly; tensors are (heads, batch, classes).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ssl_engine.configs import (
    FixMatchConfig,
    FreeMatchConfig,
    MarginMatchConfig,
    MultiMatchConfig,
    SupervisedConfig,
)
from ssl_engine.model import SafetyModel
from ssl_engine.registries import registrar

Batch = dict[str, torch.Tensor]

ALGORITHMS: dict[str, type[SSLAlgorithm]] = {}
_add_algorithm = registrar(ALGORITHMS, "algorithm")


def register(name: str):
    """Class decorator adding an algorithm under ``name``; duplicates are an error."""

    add = _add_algorithm(name)

    def deco(cls):
        cls.name = name
        return add(cls)

    return deco


@dataclass
class StepOutput:
    """What one ``train_step`` returns to the trainer."""

    loss: torch.Tensor
    log: dict[str, float]
    index: torch.Tensor | None = None  # unlabeled indices in the batch
    weak_logits: torch.Tensor | None = None  # (H, B, C) detached, real classes only
    weights: torch.Tensor | None = None  # (B,) pseudo-label training weight (0 = masked)
    # (B,) detached per-example CE of the strong view against its target, mean over heads,
    # whatever the mask (loss-based curation of precomputed views); NaN where not comparable.
    strong_loss: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class SSLAlgorithm(abc.ABC):
    """Base class: holds the model, config and per-example state; subclasses define ``train_step``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    views: ClassVar[tuple[str, ...]] = ("weak", "strong")
    extra_classes: ClassVar[int] = 0

    def __init__(
        self,
        model: SafetyModel,
        config: Any,
        *,
        n_classes: int,
        n_unlabeled: int,
        steps_per_epoch: int,
        class_weights: torch.Tensor | None = None,
        logit_adjust: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.model, self.config = model, config
        self.n_classes = n_classes
        self.n_unlabeled = n_unlabeled
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.class_weights = class_weights
        # log(prior) − log(training prior): balanced sampling / class weights train for a uniform
        # prior, which over-produces minority pseudo-labels on a skewed pool (None = off).
        self.logit_adjust = logit_adjust
        self.rng = np.random.default_rng(seed + 7919)
        self.step = 0
        self.epoch = 0
        self.last_labeled_loss: torch.Tensor | None = None

    @classmethod
    def n_heads(cls, config: Any) -> int:
        return 1

    def supervised_loss(self, labeled: Batch) -> torch.Tensor:
        """Class- and example-weighted CE, mean over heads.

        Also leaves ``last_labeled_loss``: the (B,) unweighted per-example CE (detached, mean
        over heads), which the trainer records for loss-based curation of labeled views.
        """
        logits = self.model(labeled)
        y = labeled["labels"]
        with torch.no_grad():
            self.last_labeled_loss = strong_ce(logits.float(), y).mean(0)
        w = self.class_weights.to(logits.device) if self.class_weights is not None else None
        if w is not None and self.extra_classes:
            w = torch.cat([w, w.new_zeros(self.extra_classes)])
        ex_w = labeled.get("weights")
        if ex_w is None:
            return torch.stack([F.cross_entropy(lg.float(), y, weight=w) for lg in logits]).mean()
        # Example weights scale each term but not the normaliser, so a batch of weighted
        # pseudo-labels counts less than the same batch of human labels.
        cls_w = w[y] if w is not None else torch.ones_like(ex_w)
        denom = cls_w.sum().clamp_min(1e-8)
        return torch.stack([
            (F.cross_entropy(lg.float(), y, weight=w, reduction="none") * ex_w).sum() / denom for lg in logits
        ]).mean()

    def weak_logits(self, batch: Batch) -> torch.Tensor:
        """Weak-view logits without gradient (prior-adjusted on the real classes when configured)."""
        with torch.no_grad():
            logits = self.model(batch).float()
        if self.logit_adjust is not None:
            adj = self.logit_adjust.to(logits.device)
            logits = logits.clone()
            logits[..., : len(adj)] += adj
        return logits

    @abc.abstractmethod
    def train_step(self, labeled: Batch, unlabeled: dict[str, Batch]) -> StepOutput: ...

    def supervised_step(self, labeled: Batch) -> StepOutput:
        """Step used when a round has no unlabeled data: the supervised loss alone."""
        sup = self.supervised_loss(labeled)
        return StepOutput(loss=sup, log={"supervised_loss": float(sup.detach()), "unsupervised_loss": 0.0,
                                         "mask_ratio": 0.0})

    def on_epoch_end(self) -> None:
        """Called by the trainer after each pass over the unlabeled subsample."""
        self.epoch += 1

    def example_margins(self, pseudo_labels: np.ndarray, raw_margins: np.ndarray) -> np.ndarray:
        """Per-example margin of the pseudo-label class recorded in the history (default: raw pseudo-margin)."""
        return raw_margins

    def example_agreement(self) -> tuple[list[str], np.ndarray] | None:
        """Per-example (agreement type, weight) for the review queue; None when not applicable."""
        return None


def strong_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-head, per-example CE: logits (H, B, C), targets (B,) or (H, B) -> (H, B)."""
    if targets.dim() == 1:
        targets = targets.expand(logits.shape[0], -1)
    return torch.stack([F.cross_entropy(lg, t, reduction="none") for lg, t in zip(logits, targets)])


def pseudo_margin(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """logit_c - max_{k != c} logit_k for class ``cls`` per row of ``logits`` (B, K)."""
    own = logits.gather(1, cls[:, None]).squeeze(1)
    others = logits.scatter(1, cls[:, None], float("-inf"))
    return own - others.max(1).values


@register("supervised")
class Supervised(SSLAlgorithm):
    """Cross-entropy on labeled batches only (the baseline)."""

    Config = SupervisedConfig
    views = ()

    def train_step(self, labeled, unlabeled):
        return self.supervised_step(labeled)


@register("fixmatch")
class FixMatch(SSLAlgorithm):
    """CE(x, y) + λ_u · mean(1[max p(u_w) ≥ τ] · CE(logits(u_s), ŷ))."""

    Config = FixMatchConfig

    def train_step(self, labeled, unlabeled):
        sup = self.supervised_loss(labeled)
        wl = self.weak_logits(unlabeled["weak"])[..., : self.n_classes]
        probs = wl.softmax(-1).mean(0)
        maxp, yhat = probs.max(-1)
        mask = (maxp >= self.config.threshold).float()
        ce = strong_ce(self.model(unlabeled["strong"]).float(), yhat)  # (H, B)
        unsup = (ce * mask).mean(1).mean()
        loss = sup + self.config.unlabeled_weight * unsup
        return StepOutput(
            loss=loss,
            log={"supervised_loss": float(sup.detach()), "unsupervised_loss": float(unsup.detach()), "mask_ratio": float(mask.mean())},
            index=unlabeled["weak"]["index"], weak_logits=wl, weights=mask, strong_loss=ce.detach().mean(0),
        )


class FreeMatchThreshold:
    """Self-adaptive threshold: τ_t = EMA(mean max p), p̃_t = EMA(mean p); mask = max p ≥ τ_t·p̃[ŷ]/max p̃."""

    def __init__(self, n_classes: int, momentum: float) -> None:
        self.m = momentum
        self.tau = 1.0 / n_classes
        self.p_tilde = torch.full((n_classes,), 1.0 / n_classes)

    def update(self, probs: torch.Tensor) -> None:
        probs = probs.detach().float().cpu()
        self.tau = self.m * self.tau + (1 - self.m) * float(probs.max(-1).values.mean())
        self.p_tilde = self.m * self.p_tilde + (1 - self.m) * probs.mean(0)

    def mask(self, probs: torch.Tensor) -> torch.Tensor:
        maxp, yhat = probs.max(-1)
        p_t = self.p_tilde.to(probs.device)
        thr = self.tau * p_t[yhat] / p_t.max()
        return (maxp >= thr).float()


@register("freematch")
class FreeMatch(SSLAlgorithm):
    """FixMatch with FreeMatch's self-adaptive (global × class) threshold."""

    Config = FreeMatchConfig

    def __init__(self, model, config, **kw):
        super().__init__(model, config, **kw)
        self.thresh = FreeMatchThreshold(self.n_classes, config.ema_momentum)

    def train_step(self, labeled, unlabeled):
        sup = self.supervised_loss(labeled)
        wl = self.weak_logits(unlabeled["weak"])[..., : self.n_classes]
        probs = wl.softmax(-1).mean(0)
        self.thresh.update(probs)
        mask = self.thresh.mask(probs)
        yhat = probs.argmax(-1)
        ce = strong_ce(self.model(unlabeled["strong"]).float(), yhat)  # (H, B)
        unsup = (ce * mask).mean(1).mean()
        loss = sup + self.config.unlabeled_weight * unsup
        return StepOutput(
            loss=loss,
            log={"supervised_loss": float(sup.detach()), "unsupervised_loss": float(unsup.detach()), "mask_ratio": float(mask.mean()),
                 "tau": self.thresh.tau},
            index=unlabeled["weak"]["index"], weak_logits=wl, weights=mask, strong_loss=ce.detach().mean(0),
        )


def flexmatch_mask(maxp: torch.Tensor, yhat: torch.Tensor, selected: np.ndarray, n_classes: int,
                   threshold: float) -> torch.Tensor:
    """FlexMatch: β_c = σ_c / max(max_c σ_c, #unused); mask = p_max ≥ τ·β_ŷ/(2 − β_ŷ)."""
    sigma = np.bincount(selected[selected >= 0], minlength=n_classes).astype(np.float64)
    unused = float((selected < 0).sum())
    denom = max(sigma.max(), unused, 1.0)
    beta = torch.tensor(sigma / denom, dtype=maxp.dtype, device=maxp.device)
    b = beta[yhat]
    return (maxp >= threshold * b / (2 - b)).float()


def aum_update(aum: np.ndarray, seen: np.ndarray, idx: np.ndarray, margins: np.ndarray, delta: float) -> None:
    """AUM ← m·δ/(1+t) + AUM·(1 − δ/(1+t)) for rows ``idx`` (t = times seen before); in place."""
    t = seen[idx].astype(np.float64)
    r = (delta / (1.0 + t))[:, None]
    aum[idx] = margins * r + aum[idx] * (1.0 - r)
    seen[idx] += 1


@register("marginmatch")
class MarginMatch(SSLAlgorithm):
    """FlexMatch class-adaptive mask AND AUM[ŷ] ≥ cut-off learnt from fake-class threshold examples."""

    Config = MarginMatchConfig
    extra_classes = 1

    def __init__(self, model, config, **kw):
        super().__init__(model, config, **kw)
        n, c = self.n_unlabeled, self.n_classes
        self.aum = np.zeros((n, c + 1), dtype=np.float64)
        self.seen = np.zeros(n, dtype=np.int64)
        self.selected = np.full(n, -1, dtype=np.int64)  # FlexMatch: last confident class per example
        self.last_pl = np.full(n, -1, dtype=np.int64)
        self.cutoff = float("-inf")
        self.is_threshold = np.zeros(n, dtype=bool)
        self._draw_threshold_examples()

    def _draw_threshold_examples(self) -> None:
        n, c = self.n_unlabeled, self.n_classes
        k = max(1, min(n // 100, n // c)) if n >= 2 else 0
        old = self.is_threshold.copy()
        self.is_threshold[:] = False
        if k:
            self.is_threshold[self.rng.choice(n, size=k, replace=False)] = True
        reset = old | self.is_threshold  # margins of examples trained on the fake class are not comparable
        self.aum[reset] = 0.0
        self.seen[reset] = 0

    def recompute_cutoff(self) -> None:
        vals = self.aum[self.is_threshold & (self.seen > 0), self.n_classes]
        if len(vals):
            self.cutoff = float(np.percentile(vals, self.config.aum_percentile))

    def train_step(self, labeled, unlabeled):
        cfg, c = self.config, self.n_classes
        sup = self.supervised_loss(labeled)
        idx_t = unlabeled["weak"]["index"]
        idx = idx_t.cpu().numpy()
        wl_full = self.weak_logits(unlabeled["weak"]).mean(0)  # (B, C+1)
        real = wl_full[:, :c]
        probs = real.softmax(-1)
        maxp, yhat = probs.max(-1)
        thr_ex = torch.as_tensor(self.is_threshold[idx], device=real.device)
        # AUM for every class (the fake one included) from the weak view's margins
        margins = torch.stack([pseudo_margin(wl_full, torch.full_like(yhat, k)) for k in range(c + 1)], 1)
        aum_update(self.aum, self.seen, idx, margins.cpu().numpy().astype(np.float64), cfg.aum_delta)
        # FlexMatch bookkeeping (threshold examples excluded)
        conf = ((maxp > cfg.threshold) & ~thr_ex).cpu().numpy()
        self.selected[idx[conf]] = yhat.cpu().numpy()[conf]
        self.last_pl[idx] = yhat.cpu().numpy()
        flex = flexmatch_mask(maxp, yhat, self.selected, c, cfg.threshold)
        warm = self.step >= cfg.warmup_epochs * self.steps_per_epoch
        if warm and self.step % cfg.recompute_steps == 0 or (warm and self.cutoff == float("-inf")):
            self.recompute_cutoff()
        if warm:
            aum_pl = torch.as_tensor(self.aum[idx, yhat.cpu().numpy()], device=real.device, dtype=maxp.dtype)
            aum_ok = (aum_pl >= self.cutoff).float()
        else:
            aum_ok = torch.ones_like(maxp)
        mask = flex * aum_ok
        targets = torch.where(thr_ex, torch.full_like(yhat, c), yhat)
        mask = torch.where(thr_ex, torch.ones_like(mask), mask)
        ce = strong_ce(self.model(unlabeled["strong"]).float(), targets)
        unsup = (ce * mask).mean(1).mean()
        loss = sup + cfg.unlabeled_weight * unsup
        self.step += 1
        if self.step % cfg.redraw_steps == 0:
            self._draw_threshold_examples()
        real_mask = mask * (~thr_ex).float()
        return StepOutput(
            loss=loss,
            log={"supervised_loss": float(sup.detach()), "unsupervised_loss": float(unsup.detach()),
                 "mask_ratio": float(real_mask.sum() / max(1, int((~thr_ex).sum()))),
                 "aum_cutoff": self.cutoff if np.isfinite(self.cutoff) else 0.0},
            index=idx_t, weak_logits=wl_full[None, :, :c], weights=real_mask,
            # threshold examples train towards the fake class: their loss is not a view's quality
            strong_loss=torch.where(thr_ex, torch.full_like(maxp, float("nan")), ce.detach().mean(0)),
        )

    def example_margins(self, pseudo_labels, raw_margins):
        out = self.aum[np.arange(self.n_unlabeled), np.clip(pseudo_labels, 0, self.n_classes - 1)].copy()
        out[self.seen == 0] = raw_margins[self.seen == 0]
        return out

    def on_epoch_end(self) -> None:
        super().on_epoch_end()


# --- MultiMatch -------------------------------------------------------------------------

HIGH_AGREE = "high_agree"  # others agree, all pass -> weight 1
LOW_AGREE = "low_agree"  # others agree, some (not all) pass -> disagreement_weight
DISAGREE_ONE = "disagree_one"  # others disagree, the passing ones share one label -> disagreement_weight
AGREE_NONE = "agree_none"  # others agree, none pass -> 0
DISAGREE_NONE = "disagree_none"  # others disagree, none pass -> 0
DISAGREE_BOTH = "disagree_both"  # others disagree and passing heads conflict -> 0
FIRST_EPOCH = "first_epoch"  # no cut-offs yet -> 0
AGREEMENT_TYPES = (HIGH_AGREE, LOW_AGREE, DISAGREE_ONE, AGREE_NONE, DISAGREE_NONE, DISAGREE_BOTH, FIRST_EPOCH)


def apm_margins(logits: torch.Tensor) -> torch.Tensor:
    """Pseudo-margins per class: top1 − top2 for the argmax class, logit − top1 (≤ 0) for the others."""
    top2 = logits.topk(2, dim=-1).values
    top1 = top2[..., :1]
    pm = logits - top1
    is_max = logits == top1
    return torch.where(is_max, (top2[..., 0] - top2[..., 1]).unsqueeze(-1).expand_as(logits), pm)


def vote(labels: np.ndarray, passes: np.ndarray, disagreement_weight: float):
    """Agreement rule over K voters (K, B): returns (label (B,), weight (B,), type list).

    Generalises ALGORITHMS.md's two-voter table: "agree" means all voters share a label;
    when they disagree, a label is trusted only if every passing voter gives the same one.
    """
    k, b = labels.shape
    out_label = labels[0].copy()
    out_w = np.zeros(b, dtype=np.float64)
    types: list[str] = []
    for j in range(b):
        lab, ps = labels[:, j], passes[:, j]
        n_pass = int(ps.sum())
        if (lab == lab[0]).all():
            if n_pass == k:
                types.append(HIGH_AGREE)
                out_w[j] = 1.0
            elif n_pass > 0:
                types.append(LOW_AGREE)
                out_w[j] = disagreement_weight
            else:
                types.append(AGREE_NONE)
        else:
            passing = set(lab[ps].tolist())
            if n_pass == 0:
                types.append(DISAGREE_NONE)
            elif len(passing) == 1:
                types.append(DISAGREE_ONE)
                out_label[j] = passing.pop()
                out_w[j] = disagreement_weight
            else:
                types.append(DISAGREE_BOTH)
    return out_label, out_w, types


def multimatch_targets(
    weak_logits: np.ndarray, apm_rows: np.ndarray | None, cutoffs: np.ndarray | None, disagreement_weight: float
):
    """Pseudo-labels, agreement weights and types for each head from the *other* heads.

    Args:
        weak_logits: (H, B, C) weak-view logits.
        apm_rows: (H, B, C) APM of the batch examples; ignored when ``cutoffs`` is None.
        cutoffs: (H, C) per-head, per-class APM cut-offs, or None (first epoch).
    Returns:
        labels (H, B), weights (H, B), types (H lists of B strings).
    """
    h, b, _ = weak_logits.shape
    pls = weak_logits.argmax(-1)
    if cutoffs is None:
        return pls.copy(), np.zeros((h, b)), [[FIRST_EPOCH] * b for _ in range(h)]
    passes = np.stack([apm_rows[i, np.arange(b), pls[i]] >= cutoffs[i, pls[i]] for i in range(h)])
    labels, weights, types = np.zeros((h, b), dtype=np.int64), np.zeros((h, b)), []
    for head in range(h):
        others = [i for i in range(h) if i != head]
        lab, w, t = vote(pls[others], passes[others], disagreement_weight)
        labels[head], weights[head] = lab, w
        types.append(t)
    return labels, weights, types


@register("multimatch")
class MultiMatch(SSLAlgorithm):
    """H heads over a shared encoder; each head learns from the others' APM-filtered pseudo-labels."""

    Config = MultiMatchConfig

    @classmethod
    def n_heads(cls, config) -> int:
        return config.n_heads

    def __init__(self, model, config, **kw):
        super().__init__(model, config, **kw)
        h, n, c = config.n_heads, self.n_unlabeled, self.n_classes
        self.apm = np.zeros((h, n, c))
        self.epoch_pm = np.full((h, n, c), np.nan)
        self.last_pl = np.full((h, n), -1, dtype=np.int64)
        self.ever_seen = np.zeros(n, dtype=bool)
        self.cutoffs: np.ndarray | None = None
        self.thresh = [FreeMatchThreshold(c, config.ema_momentum) for _ in range(h)]

    def train_step(self, labeled, unlabeled):
        cfg = self.config
        sup = self.supervised_loss(labeled)
        idx_t = unlabeled["weak"]["index"]
        idx = idx_t.cpu().numpy()
        wl = self.weak_logits(unlabeled["weak"])  # (H, B, C)
        probs = wl.softmax(-1)
        masks = []
        for head, th in enumerate(self.thresh):
            th.update(probs[head])
            masks.append(th.mask(probs[head]))
        masks_t = torch.stack(masks)  # (H, B)
        wl_np = wl.cpu().numpy()
        self.epoch_pm[:, idx] = apm_margins(wl).cpu().numpy()
        self.last_pl[:, idx] = wl_np.argmax(-1)
        self.ever_seen[idx] = True
        labels, weights, _ = multimatch_targets(
            wl_np, self.apm[:, idx] if self.cutoffs is not None else None, self.cutoffs, cfg.disagreement_weight
        )
        h = len(self.thresh)
        final_w = torch.zeros((h, len(idx)), device=wl.device)
        for head in range(h):
            others = [i for i in range(h) if i != head]
            fm = masks_t[others].max(0).values
            final_w[head] = torch.as_tensor(weights[head], device=wl.device, dtype=torch.float32) * fm
        targets = torch.as_tensor(labels, device=wl.device)
        ce = strong_ce(self.model(unlabeled["strong"]).float(), targets)  # (H, B), per-head targets
        unsup = (final_w * ce).mean(1).mean()
        loss = sup + cfg.unlabeled_weight * unsup
        self.step += 1
        used = final_w.max(0).values
        return StepOutput(
            loss=loss,
            log={"supervised_loss": float(sup.detach()), "unsupervised_loss": float(unsup.detach()),
                 "mask_ratio": float((final_w > 0).float().mean()),
                 "high_agree_ratio": float((torch.as_tensor(weights) == 1).float().mean())},
            index=idx_t, weak_logits=wl, weights=used, strong_loss=ce.detach().mean(0),
        )

    def on_epoch_end(self) -> None:
        """EMA-update APM for examples seen this epoch, then recalibrate every per-head, per-class cut-off."""
        cfg = self.config
        s = cfg.apm_smoothing / (1.0 + self.epoch)
        seen = ~np.isnan(self.epoch_pm[0, :, 0])
        self.apm[:, seen] = self.epoch_pm[:, seen] * s + self.apm[:, seen] * (1.0 - s)
        self.epoch_pm[:] = np.nan
        self.recalibrate()
        super().on_epoch_end()

    def recalibrate(self) -> None:
        h, _, c = self.apm.shape
        cut = np.zeros((h, c)) if self.cutoffs is None else self.cutoffs.copy()
        valid = self.ever_seen
        for head in range(h):
            others = [i for i in range(h) if i != head]
            for cls in range(c):
                agree = valid & (self.last_pl[others] == cls).all(0)
                if not agree.any():
                    continue  # keep the previous cut-off for this class; other classes still recalibrate
                value = float(np.percentile(self.apm[head, agree, cls], self.config.cutoff_percentile))
                cut[head, cls] = max(value, 0.0) if self.config.clip_cutoff_at_zero else value
        self.cutoffs = cut

    def example_margins(self, pseudo_labels, raw_margins):
        pl = np.clip(pseudo_labels, 0, self.n_classes - 1)
        out = self.apm[:, np.arange(self.n_unlabeled), pl].mean(0)
        return np.where(self.ever_seen, out, raw_margins)

    def example_agreement(self):
        """All heads vote on each example with the final APMs and cut-offs (same rule as training)."""
        n = self.n_unlabeled
        if self.cutoffs is None:
            return [FIRST_EPOCH] * n, np.zeros(n)
        pls = np.clip(self.last_pl, 0, self.n_classes - 1)
        h = pls.shape[0]
        passes = np.stack([self.apm[i, np.arange(n), pls[i]] >= self.cutoffs[i, pls[i]] for i in range(h)])
        _, w, types = vote(pls, passes, self.config.disagreement_weight)
        return types, w
