"""Frozen config dataclasses for training and for each algorithm (no torch here).

The web process imports this module to offer algorithm choices and to validate a
round's settings before queueing it. ``RoundInput.config`` is one flat mapping whose
keys are fields of :class:`TrainConfig` or of the chosen algorithm's config;
:func:`validate_config` checks it and returns the full, normalised dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("cpu-fast", "lora", "full")


@dataclass(frozen=True)
class TrainConfig:
    """Settings shared by every algorithm (the trainer reads these)."""

    # Defaults = the CPU benchmark's 200-label setting (~1.5-3.5 min per round on 2 shared cores).
    epochs: int = 3  # epochs of ``epoch_unlabeled`` unlabeled items (labeled set for supervised)
    epoch_unlabeled: int = 640  # unlabeled items drawn (without replacement) from the subsample per epoch; 0 = all
    min_steps: int = 120  # lower bound on optimiser steps (tiny labeled sets need more than 1 pass)
    max_steps: int = 0  # 0 = no cap
    lr: float = 1e-4  # encoder (trainable part) learning rate
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    batch_size: int = 16  # labeled examples per step
    unlabeled_ratio: int = 1  # unlabeled examples per step = batch_size * unlabeled_ratio
    max_length: int = 64  # cpu-fast default; raise on GPU (ToxicChat median is 16 tokens)
    max_unlabeled: int = 8000  # seeded training subsample of the pool; all are scored
    labeled_sampling: str = "balanced"  # "balanced" (equal classes per batch) | "weighted" (class-weighted CE)
    prior_adjust: bool = False  # add log(labeled prior) − log(training prior) to weak logits for pseudo-labels
    val_fraction: float = 0.2  # carved from the LABELED set (val_f1) when it would hold >= min_val_positives
    min_val_positives: int = 25  # fewer expected harmful val examples -> no split (too noisy to pick F1's argmax)
    # "auto": val_f1 when a validation split exists, else prior_match, else fixed.
    # "prior_match": threshold at the (1 - π) quantile of the unlabeled pool's scores, π = harmful
    # share of the labeled draw, so the predicted harmful rate matches the labeled prior.
    threshold_strategy: str = "auto"  # "auto" | "val_f1" | "prior_match" | "fixed"
    fixed_threshold: float = 0.5
    trainable_layers: int = 2  # cpu-fast: top encoder layers trained on cached lower-layer states
    n_strong_views: int = 2  # cpu-fast: augmented views drawn per unlabeled text (cached)
    max_strong_views: int = 8  # precomputed views (approved variants) used per example, at most
    variant_epoch_share: float = 0.5  # up to this share of each epoch's unlabeled draw goes to items with variants
    labeled_views: bool = True  # variants of labeled items train as extra labeled copies with the source's label
    # Loss-based curation: a precomputed view is flagged when its training loss is above this quantile
    # (over all examples of its kind, per epoch) in at least this share of its post-warm-up epochs.
    loss_flag_quantile: float = 0.9
    loss_flag_min_fraction: float = 0.75
    loss_flag_warmup_epochs: int = 1
    lora_r: int = 8
    lora_alpha: int = 16
    head_hidden: int = 256
    dropout: float = 0.1
    score_batch_size: int = 64
    cache_dir: str = ""  # "" = $UMBRA_CACHE_DIR or ~/.cache/umbra_ssl
    augment_seed: int = 0  # augmentations depend on (text, augment_seed), so caches are reused across seeds
    bf16: bool = True  # autocast on CUDA only


@dataclass(frozen=True)
class SupervisedConfig:
    """Cross-entropy on labeled batches only."""


@dataclass(frozen=True)
class FixMatchConfig:
    threshold: float = 0.95
    unlabeled_weight: float = 1.0


@dataclass(frozen=True)
class FreeMatchConfig:
    ema_momentum: float = 0.999
    unlabeled_weight: float = 1.0
    fairness_weight: float = 0.0  # optional self-adaptive fairness regulariser


@dataclass(frozen=True)
class MarginMatchConfig:
    threshold: float = 0.95  # FlexMatch base threshold
    unlabeled_weight: float = 1.0
    aum_delta: float = 0.997
    aum_percentile: float = 99.0  # cut-off read near the top of the threshold examples' AUMs
    warmup_epochs: int = 1  # AUM masking only after this many epochs
    recompute_steps: int = 100
    redraw_steps: int = 1000


@dataclass(frozen=True)
class MultiMatchConfig:
    n_heads: int = 3
    unlabeled_weight: float = 3.0
    disagreement_weight: float = 3.0
    apm_smoothing: float = 0.997
    cutoff_percentile: float = 5.0
    clip_cutoff_at_zero: bool = True
    ema_momentum: float = 0.999  # FreeMatch mask on top


ALGORITHM_CONFIGS: dict[str, type] = {
    "supervised": SupervisedConfig,
    "fixmatch": FixMatchConfig,
    "freematch": FreeMatchConfig,
    "marginmatch": MarginMatchConfig,
    "multimatch": MultiMatchConfig,
}
ALGORITHM_NAMES: tuple[str, ...] = tuple(ALGORITHM_CONFIGS)

# (low, high, inclusive-low) bounds; anything absent is only type-checked.
_RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, 1000),
    "epoch_unlabeled": (0, 10**7),
    "min_steps": (0, 10**7),
    "max_steps": (0, 10**7),
    "lr": (1e-8, 1.0),
    "head_lr": (1e-8, 1.0),
    "weight_decay": (0.0, 1.0),
    "warmup_ratio": (0.0, 0.9),
    "batch_size": (2, 4096),
    "unlabeled_ratio": (1, 64),
    "max_length": (8, 4096),
    "max_unlabeled": (1, 10**7),
    "val_fraction": (0.0, 0.5),
    "min_val_positives": (0, 10**6),
    "fixed_threshold": (0.0, 1.0),
    "trainable_layers": (0, 64),
    "n_strong_views": (1, 16),
    "max_strong_views": (1, 64),
    "variant_epoch_share": (0.0, 1.0),
    "loss_flag_quantile": (0.0, 1.0),
    "loss_flag_min_fraction": (0.0, 1.0),
    "loss_flag_warmup_epochs": (0, 1000),
    "lora_r": (1, 512),
    "lora_alpha": (1, 4096),
    "head_hidden": (1, 16384),
    "dropout": (0.0, 0.9),
    "score_batch_size": (1, 4096),
    "threshold": (0.0, 1.0),
    "unlabeled_weight": (0.0, 100.0),
    "ema_momentum": (0.0, 1.0),
    "fairness_weight": (0.0, 100.0),
    "aum_delta": (0.0, 1.0),
    "aum_percentile": (0.0, 100.0),
    "warmup_epochs": (0, 1000),
    "recompute_steps": (1, 10**7),
    "redraw_steps": (1, 10**7),
    "n_heads": (2, 16),
    "disagreement_weight": (0.0, 100.0),
    "apm_smoothing": (0.0, 1.0),
    "cutoff_percentile": (0.0, 100.0),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "labeled_sampling": ("balanced", "weighted"),
    "threshold_strategy": ("auto", "val_f1", "prior_match", "fixed"),
}


def _check_field(name: str, value: Any, ftype: Any) -> Any:
    ftype = ftype if isinstance(ftype, str) else getattr(ftype, "__name__", str(ftype))
    if ftype == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"config field {name!r} must be a boolean, got {value!r}")
    elif ftype == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError(f"config field {name!r} must be an integer, got {value!r}")
    elif ftype == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config field {name!r} must be a number, got {value!r}")
        value = float(value)
    elif ftype == "str":
        if not isinstance(value, str):
            raise ValueError(f"config field {name!r} must be a string, got {value!r}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"config field {name!r} must be one of {_CHOICES[name]}, got {value!r}")
    if name in _RANGES and ftype in ("int", "float"):
        lo, hi = _RANGES[name]
        if not lo <= value <= hi:
            raise ValueError(f"config field {name!r} must be in [{lo}, {hi}], got {value!r}")
    return value


def _fields(cls: type) -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(cls)}


def validate_config(algorithm: str, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a flat settings mapping for ``algorithm``; return every field with defaults filled.

    Raises:
        ValueError: unknown algorithm, unknown field, wrong type or out-of-range value
            (the message names the field).
    """
    if algorithm not in ALGORITHM_CONFIGS:
        raise ValueError(f"unknown algorithm {algorithm!r}; known: {list(ALGORITHM_NAMES)}")
    raw = dict(raw or {})
    train_fields = _fields(TrainConfig)
    algo_fields = _fields(ALGORITHM_CONFIGS[algorithm])
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name in algo_fields:
            out[name] = _check_field(name, value, algo_fields[name])
        elif name in train_fields:
            out[name] = _check_field(name, value, train_fields[name])
        else:
            raise ValueError(
                f"unknown config field {name!r} for algorithm {algorithm!r}; "
                f"known: {sorted(set(train_fields) | set(algo_fields))}"
            )
    defaults = {**dataclasses.asdict(TrainConfig()), **dataclasses.asdict(ALGORITHM_CONFIGS[algorithm]())}
    return {**defaults, **out}


def build_configs(algorithm: str, raw: Mapping[str, Any] | None) -> tuple[TrainConfig, Any]:
    """Validate ``raw`` and return ``(TrainConfig, <Algorithm>Config)`` instances."""
    full = validate_config(algorithm, raw)
    train_names = set(_fields(TrainConfig))
    algo_cls = ALGORITHM_CONFIGS[algorithm]
    algo_names = set(_fields(algo_cls))
    train = TrainConfig(**{k: v for k, v in full.items() if k in train_names and k not in algo_names})
    algo = algo_cls(**{k: v for k, v in full.items() if k in algo_names})
    return train, algo
