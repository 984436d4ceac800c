"""Predictions: the pseudo-label review queue of the active model, its filters, similar items, a round's list.

The queue is the engine's ``Prediction.review_priority`` for the round behind the active
model version, highest first: items the model cannot trust (heads disagree with high
confidence, low-confidence agreement, no passing head), then unstable margins, then a
sample of up-weighted hard-but-trusted spot checks. ``ORDER BY review_priority DESC, id``
within one round walks ``prediction_queue_idx`` so a page is an index scan plus a primary
key lookup per row, whatever the pool size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, QuerySet

from annotations.models import Item, ModelVersion, Prediction, Project, TrainingRound
from annotations.selectors.rounds import predictions_visible

QUEUE_PAGE_SIZE = 20
SIMILAR_LIMIT = 5
UNTRUSTED = (
    Prediction.Agreement.DISAGREE_BOTH,
    Prediction.Agreement.DISAGREE_ONE,
    Prediction.Agreement.DISAGREE_NONE,
    Prediction.Agreement.AGREE_NONE,
    Prediction.Agreement.FIRST_EPOCH,
    Prediction.Agreement.LOW_AGREE,
)


@dataclass(frozen=True)
class QueueFilters:
    agreement: str = ""
    label: str = ""
    p_min: float | None = None
    p_max: float | None = None
    q: str = ""

    def is_empty(self) -> bool:
        return not (self.agreement or self.label or self.q or self.p_min is not None or self.p_max is not None)


def active_review_round(*, project: Project) -> TrainingRound | None:
    """The succeeded round behind the project's active model version, or None."""
    version = (
        ModelVersion.objects.filter(project=project, is_active=True,
                                    training_round__status=TrainingRound.Status.SUCCEEDED)
        .select_related("training_round").first()
    )
    return version.training_round if version else None


def review_queue(*, training_round: TrainingRound, filters: QueueFilters | None = None,
                 exclude_ids: Iterable[int] = ()) -> QuerySet[Prediction]:
    """Pool predictions of ``training_round`` still without a human decision, in review order."""
    qs = (
        Prediction.objects.filter(training_round=training_round, item__split=Item.Split.POOL,
                                  item__human_label="", item__excluded=False)
        .select_related("item")
        .order_by("-review_priority", "id")
    )
    f = filters or QueueFilters()
    if f.agreement:
        qs = qs.filter(agreement=f.agreement)
    if f.label:
        qs = qs.filter(pseudo_label=f.label)
    if f.p_min is not None:
        qs = qs.filter(p_harmful__gte=f.p_min)
    if f.p_max is not None:
        qs = qs.filter(p_harmful__lte=f.p_max)
    if f.q:
        qs = qs.filter(Q(item__text__icontains=f.q) | Q(item__prompt__icontains=f.q))
    exclude_ids = list(exclude_ids)
    if exclude_ids:
        qs = qs.exclude(pk__in=exclude_ids)
    return qs


def prediction_in_project(*, project: Project, prediction_id: int) -> Prediction | None:
    """A prediction of ``project`` that may be reviewed (its round succeeded), or None."""
    return (predictions_visible(project=project).filter(pk=prediction_id)
            .select_related("item", "training_round").first())


def predictions_in_queue(*, training_round: TrainingRound, ids: Iterable[int]) -> list[Prediction]:
    """The given predictions if they are still waiting in ``training_round``'s queue (bulk review)."""
    return list(review_queue(training_round=training_round).filter(pk__in=list(ids)))


_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def similar_labeled_items(*, item: Item, limit: int = SIMILAR_LIMIT) -> tuple[list[Item], str]:
    """Already-labeled items closest in wording to ``item``, and how they were found.

    There is no embedding store yet, so on PostgreSQL this ranks labeled items of the
    project by full-text match on the item's most telling words (``ts_rank``); elsewhere
    it returns nothing with a note saying so.
    """
    if connection.vendor != "postgresql":
        return [], "Similar items need PostgreSQL full-text search (no embedding store yet)."
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    words = sorted(set(w.lower() for w in _WORD.findall(item.text)), key=len, reverse=True)[:12]
    if not words:
        return [], "No words to match on."
    query = SearchQuery(" OR ".join(words), search_type="websearch", config="simple")
    vector = SearchVector("text", config="simple")
    found = list(
        Item.objects.filter(project_id=item.project_id).exclude(human_label="").exclude(pk=item.pk)
        .annotate(rank=SearchRank(vector, query)).filter(rank__gt=0)
        .order_by("-rank", "id")[:limit]
    )
    return found, "Closest labeled items by shared words (full-text rank); no embedding store yet."


def predictions_for(*, training_round: TrainingRound, agreement: str | None = None,
                    min_priority: float | None = None, pseudo_label: str | None = None) -> QuerySet[Prediction]:
    """A succeeded round's predictions (all splits, reviewed or not), filtered; the API's list."""
    qs = predictions_visible(training_round=training_round).select_related("item")
    if agreement is not None:
        qs = qs.filter(agreement=agreement)
    if min_priority is not None:
        qs = qs.filter(review_priority__gte=min_priority)
    if pseudo_label:
        qs = qs.filter(pseudo_label=pseudo_label)
    return qs


def prediction_counts_by_agreement(*, training_round: TrainingRound) -> dict[str, int]:
    rows = (Prediction.objects.filter(training_round=training_round).values("agreement")
            .annotate(n=Count("id")).order_by())
    return {r["agreement"]: r["n"] for r in rows}
