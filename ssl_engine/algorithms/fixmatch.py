"""FixMatch: CE(x, y) + λ_u · mean(1[max p̃(u_w) ≥ τ] · CE(logits(u_s), argmax p̃(u_w)))."""

from __future__ import annotations

from dataclasses import dataclass

from ssl_engine.algorithms.base import PseudoLabelConfig, SSLAlgorithm, register, strong_ce
from ssl_engine.algorithms.policies import confidence_mask
from ssl_engine.params import GROUP_ALGORITHM, param


@register("fixmatch")
class FixMatch(SSLAlgorithm):
    """Fixed-confidence pseudo-labels on distribution-aligned weak-view probabilities."""

    @dataclass(frozen=True)
    class Config(PseudoLabelConfig):
        threshold: float = param(
            0.95, min=0.0, max=1.0, group=GROUP_ALGORITHM, help="τ: confidence a pseudo-label needs to be used."
        )

    def __init__(self, model, config, **kw):
        super().__init__(model, config, **kw)
        self.align = self.aligner()

    def train_step(self, labeled, unlabeled):
        sup = self.supervised_loss(labeled)
        wl = self.weak_logits(unlabeled["weak"])[..., : self.n_classes].mean(0)  # (B, C)
        if self.align is not None:
            wl = self.align.align_logits(wl)
        probs = wl.softmax(-1)
        mask = confidence_mask(probs, self.config.threshold)
        yhat = probs.argmax(-1)
        ce = strong_ce(self.model(unlabeled["strong"]).float(), yhat)  # (H, B)
        unsup = (ce * self.balanced(yhat, mask)).mean(1).mean()
        return self.unlabeled_output(
            sup, unsup, unlabeled=unlabeled["weak"], weak_logits=wl[None], weights=mask, targets=yhat, ce=ce
        )
