"""Labels: human labels (labeling progress, agreement, review activity and counts), weak and
refined labels, and the label export records with their provenance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import combinations

from django.db.models import Count, Q
from django.utils import timezone

from annotations.cache import shared_cache
from annotations.errors import FieldError
from annotations.models import (
    Annotation,
    AugmentedVariant,
    BackgroundJob,
    Item,
    Label,
    Prediction,
    Project,
    WeakLabel,
)
from annotations.selectors.items import CHUNK, chunked
from annotations.selectors.rounds import pseudo_label_round

ACTIVITY_DAYS = 7
KAPPA_MAX_ROWS = 50_000
KAPPA_MIN_SHARED = 5
# Below this many items rated by the same number of people, Fleiss' kappa swings wildly (2 items can
# give -1.0): the dashboard says "n too small" and shows n instead of the number.
FLEISS_MIN_ITEMS = 20


@dataclass
class Agreement:
    items: int = 0
    raters: int = 0
    fleiss: float | None = None
    fleiss_items: int = 0  # items behind the Fleiss' kappa (those rated by the most common number of people)
    fleiss_raters: int = 0
    fleiss_min_items: int = FLEISS_MIN_ITEMS
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
        Annotation.objects.filter(
            item__project=project, item__annotation_count__gte=2, kind__in=[Annotation.Kind.LABEL, Annotation.Kind.UNDO]
        )
        .order_by("created_at", "id")
        .values_list("item_id", "annotator__username", "kind", "label")[:KAPPA_MAX_ROWS]
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
    table = [
        [sum(1 for lab in v.values() if lab == c) for c in Label.values] for v in overlapped.values() if len(v) == n
    ]
    result.fleiss_items, result.fleiss_raters = len(table), n
    result.fleiss = fleiss_kappa(table) if len(table) >= FLEISS_MIN_ITEMS else None
    if not result.cohen_pairs and result.fleiss is None:
        result.note = (
            f"Too few overlapping items for a stable kappa (Cohen's needs {KAPPA_MIN_SHARED} per pair, "
            f"Fleiss' {FLEISS_MIN_ITEMS} items)."
        )
    return result


def review_activity(*, project: Project, days: int = ACTIVITY_DAYS) -> list[dict]:
    """Per person over the last ``days``: labels, approvals, corrections, rejections, variant reviews."""
    since = timezone.now() - timedelta(days=days)
    k = Annotation.Kind
    rows = (
        Annotation.objects.filter(item__project=project, created_at__gte=since)
        .values("annotator__username")
        .annotate(
            labels=Count("id", filter=Q(kind=k.LABEL)) - Count("id", filter=Q(kind=k.UNDO)),
            approved=Count("id", filter=Q(kind=k.APPROVE)),
            corrected=Count("id", filter=Q(kind=k.CORRECT)),
            rejected=Count("id", filter=Q(kind=k.REJECT)),
        )
        .order_by("annotator__username")
    )
    people = {r["annotator__username"]: dict(r, variants=0) for r in rows}
    variants = (
        AugmentedVariant.objects.filter(item__project=project, reviewed_at__gte=since, reviewer__isnull=False)
        .values("reviewer__username")
        .annotate(n=Count("id"))
    )
    for v in variants:
        entry = people.setdefault(
            v["reviewer__username"],
            {"annotator__username": v["reviewer__username"], "labels": 0, "approved": 0, "corrected": 0, "rejected": 0},
        )
        entry["variants"] = v["n"]
    return [dict(p, name=p["annotator__username"]) for _, p in sorted(people.items())]


def review_counts(*, project: Project) -> dict[str, int]:
    """Pseudo-label reviews and variant decisions so far."""
    k = Annotation.Kind
    reviews = Annotation.objects.filter(item__project=project, prediction__isnull=False).aggregate(
        approved=Count("id", filter=Q(kind=k.APPROVE)),
        corrected=Count("id", filter=Q(kind=k.CORRECT)),
        rejected=Count("id", filter=Q(kind=k.REJECT)),
    )
    variants = AugmentedVariant.objects.filter(item__project=project).aggregate(
        pending=Count("id", filter=Q(status=AugmentedVariant.Status.PENDING)),
        approved=Count("id", filter=Q(status=AugmentedVariant.Status.APPROVED)),
        rejected=Count("id", filter=Q(status=AugmentedVariant.Status.REJECTED)),
    )
    return {
        "reviewed": sum(reviews.values()),
        **reviews,
        **{f"variants_{key}": value for key, value in variants.items()},
    }


# --- seed labeling progress ----------------------------------------------------

# Below this share of the labeled seed set, the minority class gets a warning.
BALANCE_WARNING_SHARE = 0.2
BALANCE_WARNING_MIN_LABELS = 10
SEED_COUNTS_TTL_SECONDS = 5


@dataclass(frozen=True)
class LabelingProgress:
    labeled_today: int
    seed_harmful: int
    seed_unharmful: int
    seed_total: int
    seed_unlabeled: int
    eval_unlabeled: int
    balance_warning: str


def _seed_counts(project: Project) -> dict:
    """Per-class and open counts of the labeling splits (one aggregate over the project's items)."""
    return Item.objects.filter(
        project=project, split__in=[Item.Split.SEED, Item.Split.TEST, Item.Split.BENCH]
    ).aggregate(
        harmful=Count("id", filter=Q(split=Item.Split.SEED, human_label=Label.HARMFUL)),
        unharmful=Count("id", filter=Q(split=Item.Split.SEED, human_label=Label.UNHARMFUL)),
        total=Count("id", filter=Q(split=Item.Split.SEED)),
        seed_unlabeled=Count("id", filter=Q(split=Item.Split.SEED, human_label="", excluded=False)),
        eval_unlabeled=Count("id", filter=~Q(split=Item.Split.SEED) & Q(human_label="", excluded=False)),
    )


def _counts_version_key(project_id: int) -> str:
    return f"umbra:labeling-counts-version:{project_id}"


def labeling_counts_changed(*, project_id: int) -> None:
    """Forget the shared split counts of a project: call after a commit that changed a label or an item.

    The counts are cached under a version number that this bumps, so a request that computed
    them from an older snapshot cannot store them where a later request would read them.
    """
    cache = shared_cache()
    if cache is None:
        return
    key = _counts_version_key(project_id)
    cache.add(key, 0, None)
    cache.incr(key)


def labeling_counts(*, project: Project) -> dict:
    """The labeling splits' per-class and open counts, exact as of this request.

    With a shared (Redis) cache they are kept per project under a version that every label
    change bumps on commit (``labeling_counts_changed``): readers between two changes share
    one aggregate, and a labeler never sees counts from before their own last label (issue
    14.13: "Nothing left to label" next to "8 seed items open" came from a 5 s cache without
    invalidation). Without a shared cache, or while Redis is down, they are computed per request.
    """
    cache = shared_cache()
    if cache is None:
        return _seed_counts(project)
    version = cache.get(_counts_version_key(project.pk), 0)
    key = f"umbra:labeling-seed-counts:{project.pk}:{version}"
    seed = cache.get(key)
    if seed is None:
        seed = _seed_counts(project)
        cache.set(key, seed, SEED_COUNTS_TTL_SECONDS)
    return seed


def labeling_progress(*, project: Project, user) -> LabelingProgress:
    """Today's count for ``user`` and the seed set per class (two aggregate queries; the second may be shared)."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Annotation.objects.filter(annotator=user, item__project=project, created_at__gte=start).aggregate(
        labels=Count("id", filter=Q(kind=Annotation.Kind.LABEL)),
        undos=Count("id", filter=Q(kind=Annotation.Kind.UNDO)),
    )
    seed = labeling_counts(project=project)
    labeled = seed["harmful"] + seed["unharmful"]
    warning = ""
    if labeled >= BALANCE_WARNING_MIN_LABELS:
        minority, name = min((seed["harmful"], "harmful"), (seed["unharmful"], "unharmful"))
        if minority / labeled < BALANCE_WARNING_SHARE:
            warning = (
                f"Class imbalance: only {minority} of {labeled} labeled seed items are {name} "
                f"({minority / labeled:.0%}). Training needs examples of both classes; "
                f"consider importing more {name} candidates into the seed set."
            )
    return LabelingProgress(
        labeled_today=max(mine["labels"] - mine["undos"], 0),
        seed_harmful=seed["harmful"],
        seed_unharmful=seed["unharmful"],
        seed_total=seed["total"],
        seed_unlabeled=seed["seed_unlabeled"],
        eval_unlabeled=seed["eval_unlabeled"],
        balance_warning=warning,
    )


# --- weak, refined and exported labels ---------------------------------------------

PROVENANCES = ("human", "refined", "pseudo")
HUMAN_KINDS = (Annotation.Kind.LABEL, Annotation.Kind.APPROVE, Annotation.Kind.CORRECT, Annotation.Kind.IMPORT)


def weak_label_counts(*, project: Project) -> dict[str, int]:
    rows = (
        WeakLabel.objects.filter(item__project=project, job=None)
        .values("source")
        .annotate(n=Count("id"))
        .order_by("source")
    )
    return {r["source"]: r["n"] for r in rows}


def refined_pseudo_labels(*, project: Project) -> tuple[int | None, dict[int, str], float]:
    """(job id, {pool item id: label}, weight) of the latest succeeded refinement job's final iteration.

    Empty unless ``project.use_refined_labels``; only pool items without a human label
    (human labels always win, and evaluation splits are never trained on).
    """
    if not project.use_refined_labels:
        return None, {}, 0.0
    job = (
        BackgroundJob.objects.filter(
            project=project, kind=BackgroundJob.Kind.REFINE, status=BackgroundJob.Status.SUCCEEDED
        )
        .order_by("-finished_at", "-id")
        .first()
    )
    if job is None:
        return None, {}, 0.0
    last = (
        WeakLabel.objects.filter(job=job, source=WeakLabel.Source.REFINED)
        .order_by("-iteration")
        .values_list("iteration", flat=True)
        .first()
    )
    if last is None:
        return job.pk, {}, 0.0
    labels = dict(
        WeakLabel.objects.filter(
            job=job,
            source=WeakLabel.Source.REFINED,
            iteration=last,
            item__split=Item.Split.POOL,
            item__human_label="",
            item__excluded=False,
        ).values_list("item_id", "label")
    )
    return job.pk, labels, float(min(1.0, max(0.0, project.refined_label_weight)))


def label_records(
    *, project: Project, include: tuple[str, ...] = PROVENANCES, on_items: Callable[[int], None] | None = None
) -> Iterator[dict]:
    """One record per labeled item in the shared JSONL format, plus a ``provenance`` object.

    ``on_items(n)`` is called after each chunk with the number of items read so far (job progress).
    """
    bad = set(include) - set(PROVENANCES)
    if bad:
        raise FieldError(f"Unknown provenance(s) {sorted(bad)}; expected some of {list(PROVENANCES)}.", field="include")
    pseudo_round = pseudo_label_round(project=project) if "pseudo" in include else None
    items = (
        Item.objects.filter(project=project, excluded=False)
        .order_by("id")
        .values("id", "external_id", "text", "prompt", "split", "bench_name", "source", "human_label", "human_category")
    )

    def flush(buffer: list[dict]) -> Iterator[dict]:
        ids = [r["id"] for r in buffer]
        human: dict[int, list] = {}
        if "human" in include:
            for a in (
                Annotation.objects.filter(item_id__in=ids, kind__in=HUMAN_KINDS)
                .order_by("created_at", "id")
                .values(
                    "item_id", "annotator__username", "created_at", "kind", "label", "prediction__training_round_id"
                )
            ):
                human.setdefault(a["item_id"], []).append(a)
        refined: dict[int, dict] = {}
        if "refined" in include:
            for w in (
                WeakLabel.objects.filter(item_id__in=ids, source=WeakLabel.Source.REFINED)
                .order_by("created_at", "iteration", "id")
                .values("item_id", "label", "score", "job_id", "iteration", "created_at")
            ):
                refined[w["item_id"]] = w  # the latest wins
        pseudo: dict[int, dict] = {}
        if pseudo_round is not None:
            pseudo = {
                p["item_id"]: p
                for p in Prediction.objects.filter(training_round=pseudo_round, item_id__in=ids).values(
                    "item_id", "pseudo_label", "p_harmful", "used", "weight", "agreement"
                )
            }
        for r in buffer:
            label, prov = None, None
            if r["human_label"] and "human" in include:
                rows = [a for a in human.get(r["id"], []) if a["label"] == r["human_label"]]
                last = rows[-1] if rows else None
                label = r["human_label"]
                prov = {
                    "type": "human",
                    "by": sorted({a["annotator__username"] for a in rows}),
                    "at": last["created_at"].isoformat() if last else None,
                    "kind": last["kind"] if last else None,
                    "round": last["prediction__training_round_id"] if last else None,
                }
            elif r["id"] in refined and r["split"] in (Item.Split.POOL, Item.Split.SEED):
                w = refined[r["id"]]
                label = w["label"]
                prov = {
                    "type": "refined",
                    "by": "uu_refine",
                    "at": w["created_at"].isoformat(),
                    "round": None,
                    "refinement_job": w["job_id"],
                    "iteration": w["iteration"],
                    "score": w["score"],
                }
            elif r["id"] in pseudo and r["split"] in (Item.Split.POOL, Item.Split.SEED):
                p = pseudo[r["id"]]
                label = p["pseudo_label"]
                prov = {
                    "type": "pseudo",
                    "by": pseudo_round.algorithm,
                    "at": pseudo_round.finished_at.isoformat() if pseudo_round.finished_at else None,
                    "round": pseudo_round.pk,
                    "p_harmful": p["p_harmful"],
                    "used": p["used"],
                    "agreement": p["agreement"] or None,
                }
            if label is None:
                continue
            yield {
                "id": r["external_id"] or f"{project.slug}-{r['id']}",
                "text": r["text"],
                "prompt": r["prompt"] or None,
                "task": project.task,
                "label": label,
                "category": (r["human_category"] or None) if prov["type"] == "human" else None,
                "source": r["source"] or None,
                "split": r["split"] if not r["bench_name"] else f"bench:{r['bench_name']}",
                "provenance": prov,
            }

    done = 0
    for buffer in chunked(items.iterator(chunk_size=CHUNK), CHUNK):
        yield from flush(buffer)
        done += len(buffer)
        if on_items is not None:
            on_items(done)


TIMELINE_DAYS = 30


def label_timeline(*, project: Project, days: int = TIMELINE_DAYS):
    """Labels people gave per day (labeling, approvals, corrections) by class, as a stacked-bar SVG;
    None when nobody labeled in the last ``days`` days."""
    from django.db.models.functions import TruncDate

    from annotations import charts

    since = timezone.now() - timedelta(days=days)
    k = Annotation.Kind
    rows = (
        Annotation.objects.filter(
            item__project=project, created_at__gte=since, kind__in=[k.LABEL, k.APPROVE, k.CORRECT]
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "label")
        .annotate(n=Count("id"))
        .order_by("day")
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
        y_label="labels given",
        x_label="day",
        kind="label-timeline",
        colours=(3, 2),
    )
