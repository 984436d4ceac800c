"""Read side of seed labeling: the annotator's progress and the seed set's class balance."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from annotations.cache import shared_cache
from annotations.models import Annotation, Item, Label, Project

# Below this share of the labeled seed set, the minority class gets a warning.
BALANCE_WARNING_SHARE = 0.2
BALANCE_WARNING_MIN_LABELS = 10
# A backstop for changes the services cannot announce (Django admin, SQL, a version bump lost while Redis
# was down); label changes and imports invalidate at once.
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
            warning = (f"Class imbalance: only {minority} of {labeled} labeled seed items are {name} "
                       f"({minority / labeled:.0%}). Training needs examples of both classes; "
                       f"consider importing more {name} candidates into the seed set.")
    return LabelingProgress(
        labeled_today=max(mine["labels"] - mine["undos"], 0),
        seed_harmful=seed["harmful"], seed_unharmful=seed["unharmful"], seed_total=seed["total"],
        seed_unlabeled=seed["seed_unlabeled"], eval_unlabeled=seed["eval_unlabeled"], balance_warning=warning,
    )
