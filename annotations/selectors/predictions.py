"""Predictions: the pseudo-label review queue of the active model, its filters, recent decisions, a round's list.

(Similar items: ``annotations.selectors.explorer.similar_labeled_items``, shared with the explorer.)

Queue order is ``Prediction.review_priority`` for the round behind the active model
version, highest first. The engine writes it in two steps (``ssl_engine.review``):
``review_signal`` scores each pool item by the value of a human label there — closeness of
p(harmful) to the decision threshold, heads that disagree (or agree on nothing they trust),
a margin that flips or swings across epochs, an up-weighted pseudo-label as a spot check —
and writes the plain-language reason next to it; ``queue_order`` then re-ranks the top
500 by maximal marginal relevance on the model's text representations, so consecutive cards
are different kinds of items rather than twenty copies of one template.
``ORDER BY review_priority DESC, id`` within one round walks ``prediction_queue_idx`` so a
page is an index scan plus a primary key lookup per row, whatever the pool size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Max, Q, QuerySet

from annotations.models import Annotation, Item, ModelVersion, Prediction, Project, TrainingRound
from annotations.selectors.rounds import predictions_visible

QUEUE_PAGE_SIZE = 20
RECENT_DECISIONS = 10
REVIEW_KINDS = (Annotation.Kind.APPROVE, Annotation.Kind.CORRECT, Annotation.Kind.REJECT)
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
        ModelVersion.objects.filter(
            project=project, is_active=True, training_round__status=TrainingRound.Status.SUCCEEDED
        )
        .select_related("training_round")
        .first()
    )
    return version.training_round if version else None


def review_queue(
    *, training_round: TrainingRound, filters: QueueFilters | None = None, exclude_ids: Iterable[int] = ()
) -> QuerySet[Prediction]:
    """Pool predictions of ``training_round`` still without a human decision, in review order."""
    qs = (
        Prediction.objects.filter(
            training_round=training_round, item__split=Item.Split.POOL, item__human_label="", item__excluded=False
        )
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


@dataclass(frozen=True)
class RecentDecision:
    """One of the user's recent rows, and whether it still stands (not undone or replaced since)."""

    annotation: Annotation
    standing: bool


def recent_decisions(
    *, user, project: Project, kinds: Iterable[str] = REVIEW_KINDS, limit: int = RECENT_DECISIONS
) -> list[RecentDecision]:
    """The user's last ``limit`` rows of ``kinds`` in ``project``, newest first (two queries).

    A row stands while it is the user's latest row on its item; undo and correction append
    rows, so an undone decision stays in the list, marked, rather than vanishing.
    """
    rows = list(
        Annotation.objects.filter(annotator=user, item__project=project, kind__in=list(kinds))
        .select_related("item", "prediction")
        .order_by("-id")[:limit]
    )
    if not rows:
        return []
    latest = dict(
        Annotation.objects.filter(annotator=user, item_id__in={r.item_id for r in rows})
        .values("item_id")
        .annotate(last=Max("id"))
        .values_list("item_id", "last")
    )
    return [RecentDecision(annotation=r, standing=latest.get(r.item_id) == r.pk) for r in rows]


def prediction_for_item(*, training_round: TrainingRound, item_id: int) -> Prediction | None:
    """``item_id``'s prediction in ``training_round`` (the card to show again after an undo)."""
    return Prediction.objects.filter(training_round=training_round, item_id=item_id).select_related("item").first()


def prediction_in_project(*, project: Project, prediction_id: int) -> Prediction | None:
    """A prediction of ``project`` that may be reviewed (its round succeeded), or None."""
    return (
        predictions_visible(project=project).filter(pk=prediction_id).select_related("item", "training_round").first()
    )


def predictions_in_queue(*, training_round: TrainingRound, ids: Iterable[int]) -> list[Prediction]:
    """The given predictions if they are still waiting in ``training_round``'s queue (bulk review)."""
    return list(review_queue(training_round=training_round).filter(pk__in=list(ids)))


def predictions_for(
    *,
    training_round: TrainingRound,
    agreement: str | None = None,
    min_priority: float | None = None,
    pseudo_label: str | None = None,
) -> QuerySet[Prediction]:
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
    rows = (
        Prediction.objects.filter(training_round=training_round).values("agreement").annotate(n=Count("id")).order_by()
    )
    return {r["agreement"]: r["n"] for r in rows}
