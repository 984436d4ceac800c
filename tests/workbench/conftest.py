"""Workbench fixtures: items, a succeeded round with an active model, predictions, variants."""

from __future__ import annotations

import itertools

import pytest

from annotations.models import AugmentedVariant, Item, ModelVersion, Prediction, TrainingRound
from annotations.services.hashing import content_hash

_seq = itertools.count(1)


@pytest.fixture
def make_item():
    def make(project, text: str | None = None, split: str = Item.Split.SEED, **extra) -> Item:
        text = text if text is not None else f"item text {next(_seq)}"
        return Item.objects.create(
            project=project, text=text, split=split, content_hash=content_hash(text, extra.get("prompt", "")), **extra
        )

    return make


@pytest.fixture
def active_round():
    """A succeeded round whose model version is active (the review queue's source)."""

    def make(project, **extra) -> TrainingRound:
        rnd = TrainingRound.objects.create(
            project=project, algorithm="multimatch", status=TrainingRound.Status.SUCCEEDED, **extra
        )
        ModelVersion.objects.filter(project=project, is_active=True).update(is_active=False)
        ModelVersion.objects.create(project=project, training_round=rnd, path="/nonexistent", is_active=True)
        return rnd

    return make


@pytest.fixture
def make_prediction():
    def make(
        item,
        training_round,
        *,
        p: float = 0.7,
        priority: float = 1.0,
        agreement: str = "disagree_both",
        margins=(0.4, -0.1, 0.2),
        heads=None,
        reason: str = "heads disagree",
    ) -> Prediction:
        return Prediction.objects.create(
            item=item,
            training_round=training_round,
            p_harmful=p,
            head_probs=list(heads or [p, 1 - p]),
            pseudo_label="harmful" if p >= 0.5 else "unharmful",
            agreement=agreement,
            margin_history=list(margins),
            review_priority=priority,
            review_reason=reason,
        )

    return make


@pytest.fixture
def make_variant():
    def make(
        item,
        text: str,
        *,
        kind: str = AugmentedVariant.Kind.AUGMENTATION,
        method: str = "llm_rewrite",
        index: int = 0,
        priority: float = 0.0,
        **extra,
    ) -> AugmentedVariant:
        return AugmentedVariant.objects.create(
            item=item, text=text, kind=kind, method=method, variant_index=index, review_priority=priority, **extra
        )

    return make
