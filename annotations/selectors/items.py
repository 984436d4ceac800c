"""Items: filtered lists (the API), which items a labeler may be handed next, the export records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotations.models import Annotation, Item, Prediction, Project
from annotations.selectors.rounds import pseudo_label_round

CHUNK = 2000
LABEL_STATES = ("labeled", "unlabeled", "harmful", "unharmful", "excluded")


def items_for(
    *, project: Project, split: str | None = None, label_state: str | None = None, q: str | None = None
) -> QuerySet[Item]:
    """The project's items, filtered by split, label state and a case-insensitive text search."""
    qs = Item.objects.filter(project=project)
    if split:
        qs = qs.filter(split=split)
    if label_state == "labeled":
        qs = qs.exclude(human_label="")
    elif label_state == "unlabeled":
        qs = qs.filter(human_label="", excluded=False)
    elif label_state in ("harmful", "unharmful"):
        qs = qs.filter(human_label=label_state)
    elif label_state == "excluded":
        qs = qs.filter(excluded=True)
    if q:
        qs = qs.filter(Q(text__icontains=q) | Q(prompt__icontains=q))
    return qs


def free_for(*, user, now) -> Q:
    """Items whose lease is free for ``user`` at ``now`` (none, lapsed, or their own)."""
    return Q(claimed_by__isnull=True) | Q(claim_expires_at__lt=now) | Q(claimed_by=user)


def claimable_items(*, project: Project, user, split: str, exclude_ids: Iterable[int] = ()) -> QuerySet[Item]:
    """Items of ``split`` that ``user`` may be handed now, oldest first (index order)."""
    now = timezone.now()
    mine = Annotation.objects.filter(item=OuterRef("pk"), annotator=user)
    qs = (
        Item.objects.filter(
            project=project, split=split, excluded=False, annotation_count__lt=project.annotations_per_item
        )
        .filter(free_for(user=user, now=now))
        .filter(~Exists(mine))
    )
    exclude_ids = list(exclude_ids)
    if exclude_ids:
        qs = qs.exclude(pk__in=exclude_ids)
    # (human_label, id) walks item_split_label_idx: items without any vote first, then items
    # still short of the overlap; the primary-key order would scan the whole pool first.
    return qs.order_by("human_label", "id")


def chunked(rows: Iterable[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    """Lists of up to ``size`` rows, so per-chunk lookups replace per-row queries."""
    buffer: list[dict] = []
    for row in rows:
        buffer.append(row)
        if len(buffer) >= size:
            yield buffer
            buffer = []
    if buffer:
        yield buffer


def export_records(*, project: Project) -> Iterator[dict]:
    """One dict per item in the shared JSONL record format plus provenance fields."""
    pseudo_round = pseudo_label_round(project=project)
    round_id = pseudo_round.pk if pseudo_round else None
    items = (
        Item.objects.filter(project=project)
        .annotate(history=Count("annotations", filter=~Q(annotations__kind="undo")))
        .order_by("id")
        .values(
            "id",
            "external_id",
            "text",
            "prompt",
            "split",
            "bench_name",
            "source",
            "human_label",
            "human_category",
            "excluded",
            "history",
            "metadata",
        )
    )

    def flush(buffer: list[dict]) -> Iterator[dict]:
        preds = {}
        if round_id:
            preds = {
                p["item_id"]: p
                for p in Prediction.objects.filter(
                    training_round_id=round_id, item_id__in=[r["id"] for r in buffer]
                ).values("item_id", "p_harmful", "pseudo_label", "agreement", "review_priority")
            }
        for r in buffer:
            pred = preds.get(r["id"])
            yield {
                "id": r["external_id"] or f"{project.slug}-{r['id']}",
                "text": r["text"],
                "prompt": r["prompt"] or None,
                "task": project.task,
                "label": r["human_label"] or None,
                "category": r["human_category"] or None,
                "source": r["source"] or None,
                "split": r["split"] if not r["bench_name"] else f"bench:{r['bench_name']}",
                "excluded": r["excluded"],
                "label_history_count": r["history"],
                "label_provenance": "human" if r["human_label"] else None,
                "prediction": None
                if pred is None
                else {
                    "round": round_id,
                    "p_harmful": pred["p_harmful"],
                    "pseudo_label": pred["pseudo_label"],
                    "agreement": pred["agreement"] or None,
                    "review_priority": pred["review_priority"],
                },
                "metadata": r["metadata"] or {},
            }

    for buffer in chunked(items.iterator(chunk_size=CHUNK)):
        yield from flush(buffer)
