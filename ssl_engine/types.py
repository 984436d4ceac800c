"""Plain data that crosses the app <-> engine boundary (no torch imports here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class LabeledText:
    """A human-labeled example. ``label`` is an index into ``label_names`` (1 = harmful)."""

    example_id: str
    text: str
    label: int
    prompt: str | None = None  # the user prompt, for the response task
    weight: float = 1.0  # < 1 for refined/pseudo labels fed in as soft supervision
    strong_views: tuple[str, ...] = ()  # precomputed augmentations (approved variants)
    # Weight in the class-prior estimate (pseudo-label alignment, prior_match threshold): the
    # inverse inclusion probability of a sampled label; 0 for labels picked non-randomly (e.g.
    # from the review queue), which would skew the estimate towards the hard cases.
    prior_weight: float = 1.0


@dataclass(frozen=True)
class UnlabeledText:
    """A pool example whose label is hidden from training."""

    example_id: str
    text: str
    prompt: str | None = None
    strong_views: tuple[str, ...] = ()  # precomputed augmentations (LLM rewrite, backtranslation)
    # A known label withheld from training (a probe): only used to measure pseudo-label precision,
    # never for any training or threshold choice. Benchmarks set it from the hidden labels.
    hidden_label: int | None = None


@dataclass(frozen=True)
class RoundInput:
    """Everything one training round needs; the engine never reads a database."""

    labeled: Sequence[LabeledText]
    unlabeled: Sequence[UnlabeledText]
    out_dir: str
    algorithm: str = "multimatch"
    config: Mapping[str, Any] = field(default_factory=dict)
    eval_sets: Mapping[str, Sequence[LabeledText]] = field(default_factory=dict)
    label_names: Sequence[str] = ("unharmful", "harmful")
    mode: str | None = None  # "cpu-fast" | "lora" | "full"; None = by device
    backbone: str | None = None  # HF id or local path; None = bundled all-MiniLM-L6-v2
    device: str | None = None  # None = cuda if available else cpu
    seed: int = 0


@dataclass
class TrainState:
    """What callbacks observe after each optimisation step."""

    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    loss: float = 0.0
    supervised_loss: float = 0.0
    unsupervised_loss: float = 0.0
    mask_ratio: float = 0.0
    phase: str = "train"  # "prepare" | "train" | "score" | "evaluate"


@dataclass
class TrainControl:
    """Flags a callback may flip; the trainer checks them between steps."""

    should_stop: bool = False


class Callback(Protocol):
    def on_step_end(self, state: TrainState, control: TrainControl) -> None: ...


@dataclass(frozen=True)
class ExamplePrediction:
    """Model output and review signals for one unlabeled example."""

    example_id: str
    p_harmful: float  # averaged over heads
    head_probs: tuple[float, ...]  # p_harmful per head (one entry for single-head models)
    pseudo_label: int
    used: bool  # passed the algorithm's mask in the last epoch it was seen
    weight: float  # training weight of its pseudo-label (MultiMatch: 0 / 1 / 3)
    agreement: str  # "" | "high_agree" | "low_agree" | "disagree_one" | "disagree_none" | ...
    margin_history: tuple[float, ...]  # per-epoch AUM/APM of the pseudo-label class
    review_priority: float  # higher = review first
    review_reason: str  # human-readable reason for the priority


@dataclass(frozen=True)
class ViewLoss:
    """Training loss of one precomputed strong view (an augmentation variant) across epochs.

    Unlabeled source: cross-entropy of the strong view against the weak view's pseudo-label.
    Labeled source: the view trains as a labeled copy; cross-entropy against the source's label.
    ``flagged`` when the loss stays above the population's per-epoch quantile (loss-based curation).
    """

    example_id: str
    view_index: int  # position in the source example's ``strong_views``
    labeled: bool
    losses: tuple[float, ...]  # per-epoch mean loss; NaN where the view was not drawn that epoch
    mean_loss: float  # over the epochs it was drawn; NaN when never drawn
    flagged: bool
    reason: str  # "" unless flagged


@dataclass(frozen=True)
class PseudoLabelStats:
    """Per class: how many pseudo-labels an epoch used, and how many of those were checked / right.

    ``checked``/``correct`` count used pseudo-labels of items that carry a withheld label
    (``UnlabeledText.hidden_label``); ``precision`` is None when none was checked.
    """

    epoch: int  # 1-based; the last entry of RoundResult.pseudo_labels is the final epoch
    label: str
    drawn: int  # items of the training subsample seen this epoch with this pseudo-label
    used: int  # ... whose pseudo-label passed the mask (weight > 0)
    mean_weight: float  # mean training weight of the used ones
    checked: int
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.checked if self.checked else None


@dataclass
class RoundResult:
    """What a round returns: the saved model, per-example outputs and metrics."""

    model_dir: str
    predictions: list[ExamplePrediction]
    metrics: dict[str, dict[str, float]]  # eval-set name -> {"f1", "precision", "recall", "auprc", "accuracy", ...}
    threshold: float
    train_log: list[dict[str, float]]
    train_seconds: float
    stopped_early: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # prepare/train/score seconds, score items/s
    view_losses: list[ViewLoss] = field(default_factory=list)  # one per precomputed strong view in training
    pseudo_labels: list[PseudoLabelStats] = field(default_factory=list)  # per epoch and class
    threshold_strategy: str = ""
    threshold_note: str = ""
    mode: str = ""  # the training mode the round ran in (cpu-fast | lora | full)
