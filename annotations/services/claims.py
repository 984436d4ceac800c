"""Seed-labeling leases: which item an annotator sees next, without two people on one item.

An item is handed out while it has fewer than ``project.annotations_per_item`` votes, never
to someone who already annotated it, and to one annotator at a time: the holder gets a
lease (``settings.UMBRA_CLAIM_LEASE_SECONDS``) that lapses on its own if they walk away.

Which items: the seed split first (that is what annotators label), then the evaluation
splits (test, then bench) while they still miss human labels, because F1 on an unlabeled
test set means nothing. Pool items are never handed out here: the pool is the unlabeled
side of semi-supervised training, and reviewers label the pool items that matter through
the pseudo-label review queue.

PostgreSQL claims with ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent annotators
never block on each other; SQLite (the demo) falls back to an atomic conditional
``UPDATE … WHERE claim is free``, retried on a lost race.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from annotations.models import Annotation, Item, Project
from annotations.selectors.items import claimable_items, free_for

LABELING_SPLITS = (Item.Split.SEED, Item.Split.TEST, Item.Split.BENCH)
_RACE_RETRIES = 5


def _lease_until():
    return timezone.now() + timedelta(seconds=settings.UMBRA_CLAIM_LEASE_SECONDS)


def _held_by(*, project: Project, user) -> Item | None:
    """The item ``user`` already holds a live lease on (a reload must not hand out a second one)."""
    latest_kind = (
        Annotation.objects.filter(item=OuterRef("pk"), annotator=user).order_by("-created_at", "-id").values("kind")[:1]
    )
    return (
        Item.objects.filter(
            project=project,
            claimed_by=user,
            claim_expires_at__gt=timezone.now(),
            split__in=LABELING_SPLITS,
            excluded=False,
        )
        .annotate(my_latest=Subquery(latest_kind))
        .filter(Q(my_latest__isnull=True) | Q(my_latest=Annotation.Kind.UNDO))
        .order_by("id")
        .first()
    )


def _claim_skip_locked(*, project: Project, user, split: str, exclude_ids) -> Item | None:
    with transaction.atomic():
        item = (
            claimable_items(project=project, user=user, split=split, exclude_ids=exclude_ids)
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if item is None:
            return None
        item.claimed_by = user
        item.claim_expires_at = _lease_until()
        item.save(update_fields=["claimed_by", "claim_expires_at"])
        return item


def _claim_conditional(*, project: Project, user, split: str, exclude_ids) -> Item | None:
    for _ in range(_RACE_RETRIES):
        candidate = claimable_items(project=project, user=user, split=split, exclude_ids=exclude_ids).first()
        if candidate is None:
            return None
        won = (
            Item.objects.filter(pk=candidate.pk)
            .filter(free_for(user=user, now=timezone.now()))
            .update(claimed_by=user, claim_expires_at=_lease_until())
        )
        if won:
            candidate.refresh_from_db(fields=["claimed_by", "claim_expires_at"])
            return candidate
    return None


def item_claim_next(*, project: Project, user, skipped_ids: Iterable[int] = ()) -> Item | None:
    """Lease the next item to label for ``user`` (their current lease if they hold one).

    ``skipped_ids`` are items the user skipped recently: they are handed out only when
    nothing else is left, so a skipped item comes back later rather than at once.
    """
    held = _held_by(project=project, user=user)
    skipped_ids = list(skipped_ids)
    if held is not None and held.pk not in skipped_ids:
        return held
    claim = _claim_skip_locked if connection.features.has_select_for_update_skip_locked else _claim_conditional
    for exclude in (skipped_ids, ()) if skipped_ids else ((),):
        for split in LABELING_SPLITS:
            item = claim(project=project, user=user, split=split, exclude_ids=exclude)
            if item is not None:
                item.project = project
                return item
    return None


def item_claim_release(*, item: Item, user) -> bool:
    """Give up ``user``'s lease on ``item`` (skip); returns whether a lease was released."""
    return bool(Item.objects.filter(pk=item.pk, claimed_by=user).update(claimed_by=None, claim_expires_at=None))


@transaction.atomic
def item_claim_for(*, item: Item, user) -> Item:
    """Lease one specific item to ``user`` (after an undo the item comes straight back)."""
    locked = Item.objects.select_for_update().get(pk=item.pk)
    if locked.claimed_by_id not in (None, user.pk) and locked.claim_is_live():
        return locked  # someone else took it meanwhile; the caller shows it read-only
    locked.claimed_by = user
    locked.claim_expires_at = _lease_until()
    locked.save(update_fields=["claimed_by", "claim_expires_at"])
    return locked
