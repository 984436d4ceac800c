"""MultiMatch: H heads over a shared encoder; each head learns from the other heads' APM-checked votes.

Faithful to the paper and its USB port, with the port's known defects fixed: the APM of every
example in a batch is updated at that step, before the vote (so no example votes on an APM it
never had); the pass test compares a voter's APM with the cut-off of the head being taught;
cut-offs are recalibrated after every epoch, a class without agreed examples keeping its
previous cut-off (``+inf`` = nothing passes, before the first one); the supervised loss is the
*sum* of the heads' losses, the unsupervised one their mean (as in the port's default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssl_engine.algorithms.base import PseudoLabelConfig, SSLAlgorithm, register, strong_ce
from ssl_engine.algorithms.policies import SelfAdaptiveThreshold
from ssl_engine.lazy import torch
from ssl_engine.params import GROUP_ALGORITHM, param

HIGH_AGREE = "high_agree"  # voters agree, all pass -> weight 1
LOW_AGREE = "low_agree"  # voters agree, some (not all) pass -> disagreement_weight
DISAGREE_ONE = "disagree_one"  # voters disagree, the passing ones share one label -> disagreement_weight
AGREE_NONE = "agree_none"  # voters agree, none pass -> 0
DISAGREE_NONE = "disagree_none"  # voters disagree, none pass -> 0
DISAGREE_BOTH = "disagree_both"  # voters disagree and passing voters conflict -> 0
FIRST_EPOCH = "first_epoch"  # no cut-offs yet -> 0
AGREEMENT_TYPES = (HIGH_AGREE, LOW_AGREE, DISAGREE_ONE, AGREE_NONE, DISAGREE_NONE, DISAGREE_BOTH, FIRST_EPOCH)


def apm_margins(logits):
    """Pseudo-margins per class: top1 − top2 for the argmax class, logit − top1 (≤ 0) for the others."""
    top2 = logits.topk(2, dim=-1).values
    top1 = top2[..., :1]
    pm = logits - top1
    is_max = logits == top1
    return torch.where(is_max, (top2[..., 0] - top2[..., 1]).unsqueeze(-1).expand_as(logits), pm)


def apm_update(apm: np.ndarray, seen: np.ndarray, idx: np.ndarray, margins: np.ndarray, smoothing: float) -> None:
    """APM ← pm·s/(1+t) + APM·(1 − s/(1+t)) per head for rows ``idx`` (t = times seen before); in place.

    ``apm`` is (H, N, C), ``margins`` (H, B, C); ``seen`` counts per example.
    """
    t = seen[idx].astype(np.float64)
    r = (smoothing / (1.0 + t))[None, :, None]
    apm[:, idx] = margins * r + apm[:, idx] * (1.0 - r)
    seen[idx] += 1


def vote(labels: np.ndarray, passes: np.ndarray, disagreement_weight: float):
    """Agreement rule over K voters (K, B): returns (label (B,), weight (B,), type list).

    Generalises ALGORITHMS.md's two-voter table to K voters: "agree" means all voters share a
    label; when they disagree, a label is trusted only if every passing voter gives the same one.
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
    labels: np.ndarray, apm_rows: np.ndarray | None, cutoffs: np.ndarray | None, disagreement_weight: float
):
    """Pseudo-labels, agreement weights and types for each head from the *other* heads' votes.

    Args:
        labels: (H, B) each head's weak-view label.
        apm_rows: (H, B, C) APM of the batch examples (already updated this step).
        cutoffs: (H, C) cut-off per *taught* head and class, or None (first epoch).
    Returns:
        labels (H, B), weights (H, B), types (H lists of B strings).
    """
    h, b = labels.shape
    if cutoffs is None or apm_rows is None:
        return labels.copy(), np.zeros((h, b)), [[FIRST_EPOCH] * b for _ in range(h)]
    own_apm = np.take_along_axis(apm_rows, labels[..., None], axis=2)[..., 0]  # (H, B): APM of each head's label
    out_l, out_w, types = np.zeros((h, b), dtype=np.int64), np.zeros((h, b)), []
    for head in range(h):
        others = [i for i in range(h) if i != head]
        passes = own_apm[others] >= cutoffs[head][labels[others]]
        lab, w, t = vote(labels[others], passes, disagreement_weight)
        out_l[head], out_w[head] = lab, w
        types.append(t)
    return out_l, out_w, types


@register("multimatch")
class MultiMatch(SSLAlgorithm):
    """H heads; each head is taught by the others' votes, weighted by their agreement type."""

    @dataclass(frozen=True)
    class Config(PseudoLabelConfig):
        unlabeled_weight: float = param(
            1.0,
            min=0.0,
            max=100.0,
            group=GROUP_ALGORITHM,
            help="λ_u: weight of the unlabeled loss (the paper's 3 fed low-agreement pseudo-labels at 9x weight "
            "here and lost 5 F1 points on the ToxicChat dev split; 1 is the measured default).",
        )
        n_heads: int = param(3, min=2, max=16, group=GROUP_ALGORITHM, help="Classification heads (H).")
        disagreement_weight: float = param(
            3.0,
            min=0.0,
            max=100.0,
            group=GROUP_ALGORITHM,
            help="Weight of a trusted pseudo-label the voters were not unanimous about (low agreement).",
        )
        apm_smoothing: float = param(
            0.997,
            min=0.0,
            max=1.0,
            group=GROUP_ALGORITHM,
            advanced=True,
            help="s of the per-example APM running average.",
        )
        cutoff_percentile: float = param(
            5.0,
            min=0.0,
            max=100.0,
            group=GROUP_ALGORITHM,
            help="APM cut-off: this percentile of the APMs of examples the voters agree on.",
        )
        clip_cutoff_at_zero: bool = param(
            True,
            group=GROUP_ALGORITHM,
            advanced=True,
            help="Never let a cut-off go below 0 (a label must have held on average).",
        )
        ema_momentum: float = param(
            0.99,
            min=0.0,
            max=0.99999,
            group=GROUP_ALGORITHM,
            advanced=True,
            help="EMA momentum of the FreeMatch mask on top of the vote.",
        )
        relative_to_prior: bool = param(
            True,
            group=GROUP_ALGORITHM,
            advanced=True,
            help="FreeMatch mask: class-local thresholds relative to the labeled share.",
        )

    head_reduction = "sum"

    @classmethod
    def n_heads(cls, config) -> int:
        return config.n_heads

    def __init__(self, model, config, **kw):
        super().__init__(model, config, **kw)
        h, n, c = config.n_heads, self.n_unlabeled, self.n_classes
        self.apm = np.zeros((h, n, c))
        self.seen = np.zeros(n, dtype=np.int64)
        self.last_pl = np.full((h, n), -1, dtype=np.int64)
        self.cutoffs: np.ndarray | None = None
        prior = self.class_prior if config.relative_to_prior else None
        self.sat = [SelfAdaptiveThreshold(c, config.ema_momentum, prior) for _ in range(h)]
        self.align = [self.aligner() for _ in range(h)] if self.alignment_mode != "off" else None

    def train_step(self, labeled, unlabeled):
        cfg = self.config
        sup = self.supervised_loss(labeled)
        weak = unlabeled["weak"]
        idx = weak["index"].cpu().numpy()
        wl = self.weak_logits(weak)  # (H, B, C)
        if self.align is not None:
            wl = torch.stack([a.align_logits(lg) for a, lg in zip(self.align, wl, strict=True)])
        probs = wl.softmax(-1)
        masks = []
        for sat, p in zip(self.sat, probs, strict=True):
            sat.update(p)
            masks.append(sat.mask(p))
        masks_t = torch.stack(masks)  # (H, B)
        pls = wl.argmax(-1).cpu().numpy()
        apm_update(self.apm, self.seen, idx, apm_margins(wl).cpu().numpy(), cfg.apm_smoothing)
        self.last_pl[:, idx] = pls
        labels, weights, _ = multimatch_targets(pls, self.apm[:, idx], self.cutoffs, cfg.disagreement_weight)
        h = cfg.n_heads
        final_w = torch.zeros((h, len(idx)), device=wl.device)
        for head in range(h):
            others = [i for i in range(h) if i != head]
            fm = masks_t[others].max(0).values
            final_w[head] = torch.as_tensor(weights[head], device=wl.device, dtype=torch.float32) * fm
        targets = torch.as_tensor(labels, device=wl.device)
        ce = strong_ce(self.model(unlabeled["strong"]).float(), targets)  # (H, B), per-head targets
        best_head = final_w.argmax(0)
        used_w = final_w.max(0).values  # the agreement weight (0 / 1 / 3), before class balancing
        if self.balance is not None:  # one histogram over every head's used pseudo-labels
            flat = self.balanced(targets.reshape(-1), final_w.reshape(-1))
            final_w = flat.reshape(final_w.shape)
        unsup = (final_w * ce).mean(1).mean()
        used_target = targets.gather(0, best_head[None]).squeeze(0)
        return self.unlabeled_output(
            sup,
            unsup,
            unlabeled=weak,
            weak_logits=wl,
            weights=used_w,
            targets=used_target,
            ce=ce,
            high_agree_ratio=float((weights == 1).mean()),
        )

    def on_epoch_end(self) -> None:
        self.recalibrate()
        super().on_epoch_end()

    def recalibrate(self) -> None:
        """Per taught head and class: the cut-off percentile of the voters' APMs on examples they agree on."""
        h, _, c = self.apm.shape
        cut = np.full((h, c), np.inf) if self.cutoffs is None else self.cutoffs.copy()
        seen = self.seen > 0
        for head in range(h):
            others = [i for i in range(h) if i != head]
            for cls in range(c):
                agree = seen & (self.last_pl[others] == cls).all(0)
                if not agree.any():
                    continue  # keep the previous cut-off for this class; the other classes still recalibrate
                value = float(np.percentile(self.apm[others][:, agree, cls], self.config.cutoff_percentile))
                cut[head, cls] = max(value, 0.0) if self.config.clip_cutoff_at_zero else value
        self.cutoffs = cut

    def example_margins(self, pseudo_labels, raw_margins):
        pl = np.clip(pseudo_labels, 0, self.n_classes - 1)
        out = self.apm[:, np.arange(self.n_unlabeled), pl].mean(0)
        return np.where(self.seen > 0, out, raw_margins)

    def example_agreement(self):
        """All heads vote on each example; a head passes when its label's APM reaches the all-heads cut-off
        of that class (the cut-off percentile over examples on which every head agrees)."""
        n, (_, _, c) = self.n_unlabeled, self.apm.shape
        if self.cutoffs is None:
            return [FIRST_EPOCH] * n, np.zeros(n)
        pls = np.clip(self.last_pl, 0, c - 1)
        seen = self.seen > 0
        cut = np.full(c, np.inf)
        for cls in range(c):
            agree = seen & (pls == cls).all(0)
            if agree.any():
                v = float(np.percentile(self.apm[:, agree, cls], self.config.cutoff_percentile))
                cut[cls] = max(v, 0.0) if self.config.clip_cutoff_at_zero else v
        own = np.take_along_axis(self.apm, pls[..., None], axis=2)[..., 0]
        passes = (own >= cut[pls]) & seen[None]
        _, w, types = vote(pls, passes, self.config.disagreement_weight)
        return types, w
