"""The algorithm registry, the base class every algorithm overrides, and shared loss helpers.

An algorithm is one module: a class registered with :func:`register` whose nested frozen
``Config`` dataclass declares its settings with :func:`ssl_engine.params.param`. torch is
imported lazily (``ssl_engine.lazy``), so the web process can read the registry and the
configs without loading it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ssl_engine.lazy import torch
from ssl_engine.params import GROUP_ALGORITHM, param
from ssl_engine.registries import registrar

if TYPE_CHECKING:
    from ssl_engine.model import SafetyModel

Batch = dict[str, Any]  # str -> torch.Tensor

ALGORITHMS: dict[str, type[SSLAlgorithm]] = {}
_add_algorithm = registrar(ALGORITHMS, "algorithm")


def register(name: str):
    """Class decorator adding an algorithm under ``name``; duplicates are an error."""

    add = _add_algorithm(name)

    def deco(cls):
        cls.name = name
        return add(cls)

    return deco


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Settings every semi-supervised algorithm shares (their ``Config`` classes extend this)."""

    unlabeled_weight: float = param(
        1.0, min=0.0, max=100.0, group=GROUP_ALGORITHM, help="λ_u: weight of the unlabeled (pseudo-label) loss."
    )
    distribution_alignment: str = param(
        "quantile",
        choices=("quantile", "mean", "off"),
        group=GROUP_ALGORITHM,
        help="Shift weak-view scores so that pseudo-labels follow the labeled class mix before any mask: "
        "quantile = the top labeled-harmful share of the pool is pseudo-labeled harmful; mean = "
        "ReMixMatch's alignment of mean probabilities; off.",
    )
    alignment_momentum: float = param(
        0.99,
        min=0.0,
        max=0.99999,
        group=GROUP_ALGORITHM,
        advanced=True,
        help="EMA momentum of the model's class mix on the pool (alignment).",
    )
    class_balanced: bool = param(
        True,
        group=GROUP_ALGORITHM,
        help="Weigh pseudo-labels so that each class carries the same total weight in the unlabeled loss "
        "(as the labeled loss does), instead of the majority class drowning the rare one.",
    )
    unlabeled_rampup: float = param(
        0.1,
        min=0.0,
        max=1.0,
        group=GROUP_ALGORITHM,
        advanced=True,
        help="Share of the steps over which λ_u grows linearly from 0 (the model first learns from labels).",
    )


@dataclass
class StepOutput:
    """What one ``train_step`` returns to the trainer."""

    loss: Any  # scalar tensor
    log: dict[str, float]
    index: Any = None  # (B,) unlabeled indices in the batch
    weak_logits: Any = None  # (H, B, C) detached, real classes only, after alignment
    weights: Any = None  # (B,) pseudo-label training weight (0 = masked)
    targets: Any = None  # (B,) the pseudo-label class the unlabeled loss used
    # (B,) detached per-example CE of the strong view against its target, mean over heads,
    # whatever the mask (loss-based curation of precomputed views); NaN where not comparable.
    strong_loss: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class SSLAlgorithm(abc.ABC):
    """Holds the model, config and per-example state; subclasses define ``train_step``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    views: ClassVar[tuple[str, ...]] = ("weak", "strong")
    extra_classes: ClassVar[int] = 0
    head_reduction: ClassVar[str] = "mean"  # how per-head supervised losses combine

    def __init__(
        self,
        model: SafetyModel,
        config: Any,
        *,
        n_classes: int,
        n_unlabeled: int,
        steps_per_epoch: int,
        total_steps: int = 0,
        class_weights: np.ndarray | None = None,
        class_prior: np.ndarray | None = None,
        label_smoothing: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.model, self.config = model, config
        self.n_classes = n_classes
        self.n_unlabeled = n_unlabeled
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = max(1, total_steps or self.steps_per_epoch)
        self.class_weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        prior = np.full(n_classes, 1.0 / n_classes) if class_prior is None else np.asarray(class_prior, np.float64)
        self.class_prior = prior / prior.sum()
        self.label_smoothing = label_smoothing
        self.rng = np.random.default_rng(seed + 7919)
        from ssl_engine.algorithms.policies import ClassBalance

        self.alignment_mode = getattr(config, "distribution_alignment", "off")
        self.balance = (
            ClassBalance(self.class_prior, getattr(config, "alignment_momentum", 0.99))
            if getattr(config, "class_balanced", False)
            else None
        )
        self.step = 0
        self.epoch = 0
        self.last_labeled_loss = None  # (B,) unweighted per-example CE of the last labeled batch
        self.teacher = None  # the trainer's weight average, when configured: it gives the pseudo-labels

    @classmethod
    def n_heads(cls, config: Any) -> int:
        return 1

    # -- losses -----------------------------------------------------------------------------
    def supervised_loss(self, labeled: Batch):
        """Class- and example-weighted CE with label smoothing, combined over heads.

        Also leaves ``last_labeled_loss``: the (B,) unweighted per-example CE (detached, mean
        over heads), which the trainer records for loss-based curation of labeled views.
        """
        F = torch.nn.functional
        logits = self.model(labeled)
        y = labeled["labels"]
        with torch.no_grad():
            self.last_labeled_loss = strong_ce(logits.float(), y).mean(0)
        w = self.class_weights.to(logits.device) if self.class_weights is not None else None
        if w is not None and self.extra_classes:
            w = torch.cat([w, w.new_zeros(self.extra_classes)])
        ex_w = labeled.get("weights")
        if ex_w is None:
            ex_w = torch.ones(len(y), device=logits.device)
        # Example weights scale each term but not the normaliser, so a batch of weighted
        # pseudo-labels counts less than the same batch of human labels.
        cls_w = w[y] if w is not None else torch.ones_like(ex_w)
        denom = cls_w.sum().clamp_min(1e-8)
        per_head = torch.stack(
            [
                (
                    F.cross_entropy(lg.float(), y, weight=w, reduction="none", label_smoothing=self.label_smoothing)
                    * ex_w
                ).sum()
                / denom
                for lg in logits
            ]
        )
        return per_head.sum() if self.head_reduction == "sum" else per_head.mean()

    def weak_logits(self, batch: Batch):
        """Weak-view logits (H, B, C') without gradient, from the teacher (weight average) when there is one."""
        with torch.no_grad():
            return (self.teacher or self.model)(batch).float()

    @abc.abstractmethod
    def train_step(self, labeled: Batch, unlabeled: dict[str, Batch]) -> StepOutput: ...

    def supervised_step(self, labeled: Batch) -> StepOutput:
        """Step used when a round has no unlabeled data: the supervised loss alone."""
        sup = self.supervised_loss(labeled)
        return StepOutput(
            loss=sup, log={"supervised_loss": float(sup.detach()), "unsupervised_loss": 0.0, "mask_ratio": 0.0}
        )

    def aligner(self):
        """A fresh distribution-alignment state for one stream of weak views (None when off)."""
        from ssl_engine.algorithms.policies import DistributionAlignment

        if self.alignment_mode == "off":
            return None
        return DistributionAlignment(self.class_prior, self.config.alignment_momentum, mode=self.alignment_mode)

    def balanced(self, targets, mask):
        """``mask`` times the class-balance multipliers of ``targets`` (``mask`` alone when off)."""
        return mask if self.balance is None else mask * self.balance(targets, mask)

    def unlabeled_output(
        self, sup, unsup, *, unlabeled: Batch, weak_logits, weights, targets, ce, **log: float
    ) -> StepOutput:
        """The common tail of a semi-supervised ``train_step``: total loss (λ_u ramped up), log, tracking."""
        rampup = getattr(self.config, "unlabeled_rampup", 0.0) * self.total_steps
        ramp = min(1.0, self.step / rampup) if rampup > 0 else 1.0
        self.step += 1
        loss = sup + self.config.unlabeled_weight * ramp * unsup
        w = weights.detach().float()
        return StepOutput(
            loss=loss,
            log={
                "supervised_loss": float(sup.detach()),
                "unsupervised_loss": float(unsup.detach()),
                "mask_ratio": float((w > 0).float().mean()),
                **log,
            },
            index=unlabeled["index"],
            weak_logits=weak_logits,
            weights=w,
            targets=targets.detach(),
            strong_loss=ce.detach().mean(0) if ce.dim() == 2 else ce.detach(),
        )

    # -- hooks --------------------------------------------------------------------------------
    def on_epoch_end(self) -> None:
        """Called by the trainer after each pass over the unlabeled subsample."""
        self.epoch += 1

    def example_margins(self, pseudo_labels: np.ndarray, raw_margins: np.ndarray) -> np.ndarray:
        """Per-example margin of the pseudo-label class recorded in the history (default: raw pseudo-margin)."""
        return raw_margins

    def example_agreement(self) -> tuple[list[str], np.ndarray] | None:
        """Per-example (agreement type, weight) for the review queue; None when not applicable."""
        return None


def strong_ce(logits, targets):
    """Per-head, per-example CE: logits (H, B, C), targets (B,) or (H, B) -> (H, B)."""
    F = torch.nn.functional
    if targets.dim() == 1:
        targets = targets.expand(logits.shape[0], -1)
    return torch.stack([F.cross_entropy(lg, t, reduction="none") for lg, t in zip(logits, targets, strict=True)])


def pseudo_margin(logits, cls):
    """logit_c - max_{k != c} logit_k for class ``cls`` per row of ``logits`` (B, K)."""
    own = logits.gather(1, cls[:, None]).squeeze(1)
    others = logits.scatter(1, cls[:, None], float("-inf"))
    return own - others.max(1).values
