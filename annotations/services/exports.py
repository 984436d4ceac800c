"""Streamed export of items with their current human label and latest prediction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

import orjson
from django.db.models import Count, Q

from annotations.models import Item, Prediction, Project, TrainingRound

CHUNK = 2000


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


def _latest_round_id(project: Project) -> int | None:
    active = project.model_versions.filter(is_active=True).values_list("training_round_id", flat=True).first()
    if active:
        return active
    return (
        project.rounds.filter(status=TrainingRound.Status.SUCCEEDED)
        .order_by("-finished_at", "-id").values_list("id", flat=True).first()
    )


def export_records(*, project: Project) -> Iterator[dict]:
    """One dict per item in the shared JSONL record format plus provenance fields."""
    round_id = _latest_round_id(project)
    items = (
        Item.objects.filter(project=project)
        .annotate(history=Count("annotations", filter=~Q(annotations__kind="undo")))
        .order_by("id")
        .values("id", "external_id", "text", "prompt", "split", "bench_name", "source", "human_label",
                "human_category", "excluded", "history", "metadata")
    )
    def flush(buffer: list[dict]) -> Iterator[dict]:
        preds = {}
        if round_id:
            preds = {
                p["item_id"]: p
                for p in Prediction.objects.filter(training_round_id=round_id, item_id__in=[r["id"] for r in buffer])
                .values("item_id", "p_harmful", "pseudo_label", "agreement", "review_priority")
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
                "prediction": None if pred is None else {
                    "round": round_id, "p_harmful": pred["p_harmful"], "pseudo_label": pred["pseudo_label"],
                    "agreement": pred["agreement"] or None, "review_priority": pred["review_priority"],
                },
                "metadata": r["metadata"] or {},
            }

    for buffer in chunked(items.iterator(chunk_size=CHUNK)):
        yield from flush(buffer)


def items_export(*, project: Project, out: IO[bytes]) -> int:
    """Write the project's items as JSONL to ``out``; returns the number of records."""
    n = 0
    for record in export_records(project=project):
        out.write(orjson.dumps(record) + b"\n")
        n += 1
    return n
