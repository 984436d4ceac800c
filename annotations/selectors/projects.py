"""Projects: those a user sees, their item counts and members, the dashboard's next-step hint."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from annotations.models import Item, Label, Membership, Project
from annotations.selectors.predictions import UNTRUSTED, active_review_round, review_queue

HINT_SAMPLE = 200


def projects_for(*, user) -> QuerySet[Project]:
    """Projects the user may see (all of them for superusers)."""
    qs = Project.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.order_by("name")


def project_counts(*, project: Project) -> dict[str, int]:
    """Item counts by split and label, for the dashboard."""
    row = Item.objects.filter(project=project).aggregate(
        total=Count("id"),
        pool=Count("id", filter=Q(split=Item.Split.POOL)),
        seed=Count("id", filter=Q(split=Item.Split.SEED)),
        evaluation=Count("id", filter=Q(split__in=[Item.Split.TEST, Item.Split.BENCH])),
        labeled_harmful=Count(
            "id", filter=Q(human_label=Label.HARMFUL) & ~Q(split__in=[Item.Split.TEST, Item.Split.BENCH])
        ),
        labeled_unharmful=Count(
            "id", filter=Q(human_label=Label.UNHARMFUL) & ~Q(split__in=[Item.Split.TEST, Item.Split.BENCH])
        ),
        excluded=Count("id", filter=Q(excluded=True)),
    )
    return row


def project_members(*, project: Project) -> QuerySet[Membership]:
    """The project's memberships with their users, by role then username."""
    return project.memberships.select_related("user").order_by("role", "user__username")


@dataclass(frozen=True)
class NextHint:
    where: str  # "label" | "review" | "variants" | "rounds" | ""
    text: str
    untrusted: int = 0
    expected_value: float = 0.0


def next_step_hint(*, project: Project, counts: dict, variants_pending: int) -> NextHint:
    """What a human label is worth most on right now, in words."""
    harmful, unharmful = counts.get("labeled_harmful", 0), counts.get("labeled_unharmful", 0)
    seed_open = Item.objects.filter(project=project, split=Item.Split.SEED, human_label="", excluded=False).exists()
    target = project.min_labels_per_class
    if min(harmful, unharmful) < target and seed_open:
        short = "harmful" if harmful < unharmful else "unharmful"
        return NextHint(
            "label",
            f"Label seed items: the seed set has {harmful} harmful and {unharmful} "
            f"unharmful labels; a model is activated only from {target} "
            f"of each ({short} is short).",
        )
    eval_open = Item.objects.filter(project=project, split=Item.Split.TEST, human_label="", excluded=False).exists()
    if eval_open:
        return NextHint("label", "Label the test split: F1 is only meaningful on human-labeled test items.")
    training_round = active_review_round(project=project)
    if training_round is not None:
        top = list(
            review_queue(training_round=training_round).values_list("review_priority", "agreement")[:HINT_SAMPLE]
        )
        if top:
            untrusted = sum(1 for _, a in top if a in UNTRUSTED)
            value = sum(p for p, _ in top[:100])
            return NextHint(
                "review",
                f"Review pseudo-labels: {untrusted} of the next {len(top)} queue items are ones the model "
                f"cannot trust (summed review priority of the top 100: {value:.1f}). Each review there "
                f"removes a likely wrong pseudo-label from the next round.",
                untrusted=untrusted,
                expected_value=value,
            )
    if variants_pending:
        return NextHint("variants", f"Review {variants_pending} pending augmentation variant(s).")
    return NextHint("rounds", "Nothing waits for a human: start a training round to get a review queue.")
