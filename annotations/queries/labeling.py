"""Read side of seed labeling: the annotator's progress and the seed set's class balance."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from annotations.models import Annotation, Item, Label, Project

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
    return Item.objects.filter(project=project, split__in=[Item.Split.SEED, Item.Split.TEST, Item.Split.BENCH]).aggregate(
        harmful=Count("id", filter=Q(split=Item.Split.SEED, human_label=Label.HARMFUL)),
        unharmful=Count("id", filter=Q(split=Item.Split.SEED, human_label=Label.UNHARMFUL)),
        total=Count("id", filter=Q(split=Item.Split.SEED)),
        seed_unlabeled=Count("id", filter=Q(split=Item.Split.SEED, human_label="", excluded=False)),
        eval_unlabeled=Count("id", filter=~Q(split=Item.Split.SEED) & Q(human_label="", excluded=False)),
    )


def labeling_progress(*, project: Project, user) -> LabelingProgress:
    """Today's count for ``user`` and the seed set per class (two aggregate queries)."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Annotation.objects.filter(annotator=user, item__project=project, created_at__gte=start).aggregate(
        labels=Count("id", filter=Q(kind=Annotation.Kind.LABEL)),
        undos=Count("id", filter=Q(kind=Annotation.Kind.UNDO)),
    )
    # The split counts scan every labeling item of the project (0.2 s at 200k seed items) and every
    # card render needs them: shared for a few seconds (load benchmark: p50 8.5 s -> see load.md).
    seed = cache.get_or_set(f"umbra:labeling-seed-counts:{project.pk}", lambda: _seed_counts(project),
                            SEED_COUNTS_TTL_SECONDS)
    labeled = seed["harmful"] + seed["unharmful"]
    warning = ""
    if labeled >= BALANCE_WARNING_MIN_LABELS:
        minority, name = min((seed["harmful"], "harmful"), (seed["unharmful"], "unharmful"))
        if minority / labeled < BALANCE_WARNING_SHARE:
            warning = (f"Class imbalance: only {minority} of {labeled} labeled seed items are {name} "
                       f"({minority / labeled:.0%}). Training needs examples of both classes; "
                       f"consider importing more {name} candidates into the seed set.")
    return LabelingProgress(
        labeled_today=max(mine["labels"] - mine["undos"], 0),
        seed_harmful=seed["harmful"], seed_unharmful=seed["unharmful"], seed_total=seed["total"],
        seed_unlabeled=seed["seed_unlabeled"], eval_unlabeled=seed["eval_unlabeled"], balance_warning=warning,
    )
