"""MarginMatch: FlexMatch's class-adaptive mask AND AUM[ŷ] ≥ a cut-off learnt from fake-class examples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssl_engine.algorithms.base import PseudoLabelConfig, SSLAlgorithm, pseudo_margin, register, strong_ce
from ssl_engine.algorithms.policies import CurriculumMask, aum_update
from ssl_engine.lazy import torch
from ssl_engine.params import GROUP_ALGORITHM, param


@register("marginmatch")
class MarginMatch(SSLAlgorithm):
    """Pseudo-labels are kept when their average pseudo-margin (AUM) beats what mislabeled examples reach."""

    @dataclass(frozen=True)
    class Config(PseudoLabelConfig):
        threshold: float = param(0.95, min=0.0, max=1.0, group=GROUP_ALGORITHM, help="FlexMatch base threshold τ.")
        relative_to_prior: bool = param(
            True,
            group=GROUP_ALGORITHM,
            help="FlexMatch's per-class learning effect counts each class relative to its labeled share.",
        )
        aum_delta: float = param(
            0.997,
            min=0.0,
            max=1.0,
            group=GROUP_ALGORITHM,
            advanced=True,
            help="δ of the AUM running average (1 = exact running mean).",
        )
        aum_percentile: float = param(
            99.0,
            min=0.0,
            max=100.0,
            group=GROUP_ALGORITHM,
            help="Percentile of the fake-class examples' AUMs used as the cut-off.",
        )
        warmup_epochs: int = param(1, min=0, max=1000, group=GROUP_ALGORITHM, help="Epochs before AUM masking starts.")
        recompute_steps: int = param(
            50, min=1, max=10**7, group=GROUP_ALGORITHM, advanced=True, help="Steps between cut-off recomputations."
        )
        redraw_steps: int = param(
            1000,
            min=1,
            max=10**7,
            group=GROUP_ALGORITHM,
            advanced=True,
            help="Steps between re-draws of the fake-class (threshold) examples.",
        )

    extra_classes = 1

    def __init__(self, model, config, **kw):
        super().__init__(model, config, **kw)
        n, c = self.n_unlabeled, self.n_classes
        self.aum = np.zeros((n, c + 1), dtype=np.float64)
        self.seen = np.zeros(n, dtype=np.int64)
        self.cutoff = float("-inf")
        self.is_threshold = np.zeros(n, dtype=bool)
        self.align = self.aligner()
        self.flex = CurriculumMask(n, c, config.threshold, self.class_prior if config.relative_to_prior else None)
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
        weak = unlabeled["weak"]
        idx = weak["index"].cpu().numpy()
        wl_full = self.weak_logits(weak).mean(0)  # (B, C+1)
        real = wl_full[:, :c]
        if self.align is not None:
            real = self.align.align_logits(real)
            wl_full = torch.cat([real, wl_full[:, c:]], 1)
        probs = real.softmax(-1)
        yhat = probs.argmax(-1)
        thr_np = self.is_threshold[idx]
        thr_ex = torch.as_tensor(thr_np, device=real.device)
        # AUM for every class (the fake one included) from the weak view's margins
        margins = torch.stack([pseudo_margin(wl_full, torch.full_like(yhat, k)) for k in range(c + 1)], 1)
        aum_update(self.aum, self.seen, idx, margins.cpu().numpy().astype(np.float64), cfg.aum_delta)
        self.flex.update(idx, probs, exclude=thr_np)
        flex = self.flex.mask(probs)
        warm = self.step >= cfg.warmup_epochs * self.steps_per_epoch
        if warm and (self.step % cfg.recompute_steps == 0 or self.cutoff == float("-inf")):
            self.recompute_cutoff()
        if warm:
            aum_pl = torch.as_tensor(self.aum[idx, yhat.cpu().numpy()], device=real.device, dtype=probs.dtype)
            aum_ok = (aum_pl >= self.cutoff).float()
        else:
            aum_ok = torch.ones_like(flex)
        mask = flex * aum_ok
        targets = torch.where(thr_ex, torch.full_like(yhat, c), yhat)
        real_mask = mask * (~thr_ex).float()
        # threshold examples always train towards the fake class, outside the class balance
        mask = torch.where(thr_ex, torch.ones_like(mask), self.balanced(yhat, real_mask))
        ce = strong_ce(self.model(unlabeled["strong"]).float(), targets)
        unsup = (ce * mask).mean(1).mean()
        if (self.step + 1) % cfg.redraw_steps == 0:
            self._draw_threshold_examples()
        # threshold examples train towards the fake class: their loss is not a view's quality
        ce_real = torch.where(thr_ex[None], torch.full_like(ce, float("nan")), ce)
        return self.unlabeled_output(
            sup,
            unsup,
            unlabeled=weak,
            weak_logits=real[None],
            weights=real_mask,
            targets=yhat,
            ce=ce_real,
            aum_cutoff=self.cutoff if np.isfinite(self.cutoff) else 0.0,
        )

    def example_margins(self, pseudo_labels, raw_margins):
        out = self.aum[np.arange(self.n_unlabeled), np.clip(pseudo_labels, 0, self.n_classes - 1)].copy()
        out[self.seen == 0] = raw_margins[self.seen == 0]
        return out
