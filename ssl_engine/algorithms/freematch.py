"""FreeMatch: FixMatch with a self-adaptive (global × class-local) threshold and optional fairness term."""

from __future__ import annotations

from dataclasses import dataclass

from ssl_engine.algorithms.base import PseudoLabelConfig, SSLAlgorithm, register, strong_ce
from ssl_engine.algorithms.policies import SelfAdaptiveThreshold
from ssl_engine.lazy import torch
from ssl_engine.params import GROUP_ALGORITHM, param


@register("freematch")
class FreeMatch(SSLAlgorithm):
    """Self-adaptive thresholds (τ_0 = 1/C) on distribution-aligned weak-view probabilities."""

    @dataclass(frozen=True)
    class Config(PseudoLabelConfig):
        ema_momentum: float = param(
            0.99,
            min=0.0,
            max=0.99999,
            group=GROUP_ALGORITHM,
            help="EMA momentum of the self-adaptive threshold (the paper's 0.999 assumes ~10⁶ steps; "
            "0.99 averages over ~100 steps, the scale of a CPU round).",
        )
        relative_to_prior: bool = param(
            True,
            group=GROUP_ALGORITHM,
            help="Class-local thresholds compare each class's predicted share with its labeled share "
            "(keeps a rare harmful class from getting a near-zero threshold).",
        )
        fairness_weight: float = param(
            0.0,
            min=0.0,
            max=100.0,
            group=GROUP_ALGORITHM,
            advanced=True,
            help="Weight of FreeMatch's self-adaptive fairness term (−H of the normalised strong-view class mix).",
        )

    def __init__(self, model, config, **kw):
        super().__init__(model, config, **kw)
        self.align = self.aligner()
        self.sat = SelfAdaptiveThreshold(
            self.n_classes, config.ema_momentum, self.class_prior if config.relative_to_prior else None
        )

    def train_step(self, labeled, unlabeled):
        sup = self.supervised_loss(labeled)
        wl = self.weak_logits(unlabeled["weak"])[..., : self.n_classes].mean(0)
        if self.align is not None:
            wl = self.align.align_logits(wl)
        probs = wl.softmax(-1)
        self.sat.update(probs)
        mask = self.sat.mask(probs)
        yhat = probs.argmax(-1)
        strong = self.model(unlabeled["strong"]).float()[..., : self.n_classes]
        ce = strong_ce(strong, yhat)
        unsup = (ce * self.balanced(yhat, mask)).mean(1).mean()
        if self.config.fairness_weight > 0 and mask.sum() > 0:
            unsup = unsup + self.config.fairness_weight * self.fairness_loss(strong.mean(0), mask)
        thr = self.sat.class_thresholds()
        return self.unlabeled_output(
            sup,
            unsup,
            unlabeled=unlabeled["weak"],
            weak_logits=wl[None],
            weights=mask,
            targets=yhat,
            ce=ce,
            tau=float(self.sat.tau),
            **{f"threshold_c{c}": float(t) for c, t in enumerate(thr)},
        )

    def fairness_loss(self, strong_logits, mask):
        """FreeMatch's self-adaptive fairness (as in USB): Σ SumNorm(p̃_t / h̃_t) · log SumNorm(p̄_s / h̄_s)
        over the masked examples, p̄_s / h̄_s the strong view's mean probability / prediction histogram."""
        keep = mask > 0
        p_s = strong_logits[keep].softmax(-1)
        hist_s = torch.bincount(p_s.argmax(-1), minlength=self.n_classes).float()
        hist_s = hist_s / hist_s.sum()
        p_model = torch.as_tensor(self.sat.p_tilde, dtype=p_s.dtype, device=p_s.device)
        label_hist = torch.as_tensor(self.sat.label_hist, dtype=p_s.dtype, device=p_s.device)
        mod_model = p_model / label_hist.clamp_min(1e-6)
        mod_model = mod_model / mod_model.sum()
        inv_hist = torch.where(hist_s > 0, 1.0 / hist_s.clamp_min(1e-6), torch.zeros_like(hist_s))
        mod_s = p_s.mean(0) * inv_hist
        mod_s = mod_s / mod_s.sum().clamp_min(1e-12)
        return (mod_model * torch.log(mod_s + 1e-12)).sum()
