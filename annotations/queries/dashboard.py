"""Read side of the project dashboard: review counts, rounds, agreement, activity, next-step hint."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import combinations

from django.db.models import Count, Q
from django.utils import timezone

from annotations.models import Annotation, AugmentedVariant, Item, Label, Prediction, Project, TrainingRound
from annotations.queries.review import UNTRUSTED, active_review_round, review_queue

ACTIVITY_DAYS = 7
KAPPA_MAX_ROWS = 50_000
KAPPA_MIN_SHARED = 5
SEED_TARGET_PER_CLASS = 20
HINT_SAMPLE = 200


@dataclass
class Agreement:
    items: int = 0
    raters: int = 0
    fleiss: float | None = None
    cohen_pairs: list[tuple[str, str, int, float]] = field(default_factory=list)
    note: str = ""


def fleiss_kappa(table: list[list[int]]) -> float | None:
    """Fleiss' kappa for ``table[item][category]`` rating counts, same number of raters per item."""
    if not table:
        return None
    n = sum(table[0])
    if n < 2 or any(sum(row) != n for row in table):
        return None
    items = len(table)
    p_j = [sum(row[j] for row in table) / (items * n) for j in range(len(table[0]))]
    p_i = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in table]
    p_bar = sum(p_i) / items
    p_e = sum(p * p for p in p_j)
    if p_e >= 1.0:
        return 1.0 if p_bar >= 1.0 else None  # everyone used one category: kappa is undefined
    return (p_bar - p_e) / (1 - p_e)


def annotator_agreement(*, project: Project) -> Agreement:
    """Cohen's kappa per annotator pair and Fleiss' kappa, over items with overlapping labels."""
    rows = (
        Annotation.objects.filter(item__project=project, item__annotation_count__gte=2,
                                  kind__in=[Annotation.Kind.LABEL, Annotation.Kind.UNDO])
        .order_by("created_at", "id").values_list("item_id", "annotator__username", "kind", "label")
        [:KAPPA_MAX_ROWS]
    )
    latest: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, who, kind, label in rows:
        if kind == Annotation.Kind.UNDO:
            latest[item_id].pop(who, None)
        else:
            latest[item_id][who] = label
    overlapped = {i: v for i, v in latest.items() if len(v) >= 2}
    result = Agreement(items=len(overlapped), raters=len({w for v in overlapped.values() for w in v}))
    if not overlapped:
        result.note = "No item has labels from two annotators yet (set the project's overlap above 1)."
        return result
    from sklearn.metrics import cohen_kappa_score

    by_pair: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for votes in overlapped.values():
        for a, b in combinations(sorted(votes), 2):
            by_pair[(a, b)][0].append(votes[a])
            by_pair[(a, b)][1].append(votes[b])
    for (a, b), (ya, yb) in sorted(by_pair.items()):
        if len(ya) >= KAPPA_MIN_SHARED:
            k = cohen_kappa_score(ya, yb, labels=Label.values)
            if k == k:  # NaN when both raters used one label throughout
                result.cohen_pairs.append((a, b, len(ya), float(k)))
    n = max(set(len(v) for v in overlapped.values()), key=lambda k: sum(len(v) == k for v in overlapped.values()))
    table = [[sum(1 for lab in v.values() if lab == c) for c in Label.values]
             for v in overlapped.values() if len(v) == n]
    result.fleiss = fleiss_kappa(table)
    if not result.cohen_pairs and result.fleiss is None:
        result.note = f"Too few overlapping items for a stable kappa (need {KAPPA_MIN_SHARED} per pair)."
    return result


def review_activity(*, project: Project, days: int = ACTIVITY_DAYS) -> list[dict]:
    """Per person over the last ``days``: labels, approvals, corrections, rejections, variant reviews."""
    since = timezone.now() - timedelta(days=days)
    k = Annotation.Kind
    rows = (
        Annotation.objects.filter(item__project=project, created_at__gte=since)
        .values("annotator__username")
        .annotate(labels=Count("id", filter=Q(kind=k.LABEL)) - Count("id", filter=Q(kind=k.UNDO)),
                  approved=Count("id", filter=Q(kind=k.APPROVE)),
                  corrected=Count("id", filter=Q(kind=k.CORRECT)),
                  rejected=Count("id", filter=Q(kind=k.REJECT)))
        .order_by("annotator__username")
    )
    people = {r["annotator__username"]: dict(r, variants=0) for r in rows}
    variants = (
        AugmentedVariant.objects.filter(item__project=project, reviewed_at__gte=since, reviewer__isnull=False)
        .values("reviewer__username").annotate(n=Count("id"))
    )
    for v in variants:
        entry = people.setdefault(v["reviewer__username"], {
            "annotator__username": v["reviewer__username"], "labels": 0, "approved": 0, "corrected": 0,
            "rejected": 0})
        entry["variants"] = v["n"]
    return [dict(p, name=p["annotator__username"]) for _, p in sorted(people.items())]


def review_counts(*, project: Project) -> dict[str, int]:
    """Pseudo-label reviews and variant decisions so far."""
    k = Annotation.Kind
    reviews = Annotation.objects.filter(item__project=project, prediction__isnull=False).aggregate(
        approved=Count("id", filter=Q(kind=k.APPROVE)), corrected=Count("id", filter=Q(kind=k.CORRECT)),
        rejected=Count("id", filter=Q(kind=k.REJECT)),
    )
    variants = AugmentedVariant.objects.filter(item__project=project).aggregate(
        pending=Count("id", filter=Q(status=AugmentedVariant.Status.PENDING)),
        approved=Count("id", filter=Q(status=AugmentedVariant.Status.APPROVED)),
        rejected=Count("id", filter=Q(status=AugmentedVariant.Status.REJECTED)),
    )
    return {"reviewed": sum(reviews.values()), **reviews,
            **{f"variants_{key}": value for key, value in variants.items()}}


def recent_rounds(*, project: Project, limit: int = 5) -> list[TrainingRound]:
    """The latest rounds with their model version (status and metrics are live on the row)."""
    return list(TrainingRound.objects.filter(project=project).select_related("model_version", "started_by")[:limit])


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
        return NextHint("label", f"Label seed items: the seed set has {harmful} harmful and {unharmful} "
                                 f"unharmful labels; a model is activated only from {target} "
                                 f"of each ({short} is short).")
    eval_open = Item.objects.filter(project=project, split=Item.Split.TEST, human_label="", excluded=False).exists()
    if eval_open:
        return NextHint("label", "Label the test split: F1 is only meaningful on human-labeled test items.")
    training_round = active_review_round(project=project)
    if training_round is not None:
        top = list(review_queue(training_round=training_round)
                   .values_list("review_priority", "agreement")[:HINT_SAMPLE])
        if top:
            untrusted = sum(1 for _, a in top if a in UNTRUSTED)
            value = sum(p for p, _ in top[:100])
            return NextHint(
                "review",
                f"Review pseudo-labels: {untrusted} of the next {len(top)} queue items are ones the model "
                f"cannot trust (summed review priority of the top 100: {value:.1f}). Each review there "
                f"removes a likely wrong pseudo-label from the next round.",
                untrusted=untrusted, expected_value=value,
            )
    if variants_pending:
        return NextHint("variants", f"Review {variants_pending} pending augmentation variant(s).")
    return NextHint("rounds", "Nothing waits for a human: start a training round to get a review queue.")


def prediction_counts_by_agreement(*, training_round: TrainingRound) -> dict[str, int]:
    rows = (Prediction.objects.filter(training_round=training_round).values("agreement")
            .annotate(n=Count("id")).order_by())
    return {r["agreement"]: r["n"] for r in rows}


TIMELINE_DAYS = 30


def label_timeline(*, project: Project, days: int = TIMELINE_DAYS):
    """Labels people gave per day (labeling, approvals, corrections) by class, as a stacked-bar SVG;
    None when nobody labeled in the last ``days`` days."""
    from django.db.models.functions import TruncDate

    from annotations import charts

    since = timezone.now() - timedelta(days=days)
    k = Annotation.Kind
    rows = (
        Annotation.objects.filter(item__project=project, created_at__gte=since,
                                  kind__in=[k.LABEL, k.APPROVE, k.CORRECT])
        .annotate(day=TruncDate("created_at")).values("day", "label").annotate(n=Count("id")).order_by("day")
    )
    per_day: dict = defaultdict(dict)
    for r in rows:
        per_day[r["day"]][r["label"]] = r["n"]
    if not per_day:
        return None
    days_sorted = sorted(per_day)
    return charts.stacked_bars(
        [d.strftime("%b %d") for d in days_sorted],
        [(name, [per_day[d].get(name, 0) for d in days_sorted]) for name in (Label.HARMFUL, Label.UNHARMFUL)],
        title=f"Human labels given per day by class, last {days} days (labeling, approvals, corrections)",
        y_label="labels given", x_label="day", kind="label-timeline", colours=(3, 2))
