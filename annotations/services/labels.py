"""Human labels: submit, undo, review of pseudo-labels. Rows are appended, never edited.

The current label of an item is derived from its history (``item_refresh_label``):
each person's latest row is their vote (an undo withdraws it, a reject votes
"unusable"); a reviewer's or admin's vote outranks annotators' votes; among annotators
the majority wins and a tie goes to the latest vote.
"""

from __future__ import annotations

from collections import Counter

from django.db import IntegrityError, transaction

from annotations.errors import ApplicationError, Conflict, FieldError, NotFound
from annotations.models import ROLE_RANK, Annotation, Item, Label, Prediction, Role
from annotations.selectors.labels import labeling_counts_changed

UNUSABLE = "unusable"


def _votes(item: Item) -> list[tuple[str, str, str, int]]:
    """(vote, category, role, order) per person, from their latest row."""
    latest: dict[int, Annotation] = {}
    for a in item.annotations.order_by("created_at", "id"):
        latest[a.annotator_id] = a
    votes = []
    for order, a in enumerate(sorted(latest.values(), key=lambda a: (a.created_at, a.id))):
        if a.kind == Annotation.Kind.UNDO:
            continue
        vote = UNUSABLE if a.kind == Annotation.Kind.REJECT else a.label
        votes.append((vote, a.category, a.role, order))
    return votes


def item_refresh_label(*, item: Item, also_save: tuple[str, ...] = ()) -> Item:
    """Recompute the item's derived label fields from its annotation history and save them.

    ``also_save`` names other fields the caller changed on ``item``, saved in the same UPDATE.
    """
    votes = _votes(item)
    senior = [v for v in votes if ROLE_RANK[v[2]] >= ROLE_RANK[Role.REVIEWER]]
    if senior:
        winner = max(senior, key=lambda v: v[3])
    elif votes:
        counts = Counter(v[0] for v in votes)
        top = max(counts.values())
        winner = max((v for v in votes if counts[v[0]] == top), key=lambda v: v[3])
    else:
        winner = None
    item.excluded = bool(winner and winner[0] == UNUSABLE)
    item.human_label = winner[0] if winner and winner[0] != UNUSABLE else ""
    item.human_category = winner[1] if item.human_label else ""
    item.annotation_count = len(votes)
    item.votes_disagree = len({v[0] for v in votes}) > 1
    item.save(
        update_fields=["excluded", "human_label", "human_category", "annotation_count", "votes_disagree", *also_save]
    )
    project_id = item.project_id
    transaction.on_commit(lambda: labeling_counts_changed(project_id=project_id))
    return item


def _create(
    *,
    item: Item,
    user,
    role: str,
    kind: str,
    label: str = "",
    category: str = "",
    note: str = "",
    prediction: Prediction | None = None,
    client_token: str = "",
) -> Annotation:
    annotation = Annotation(
        item=item,
        annotator=user,
        role=role,
        kind=kind,
        label=label,
        category=category,
        note=note,
        prediction=prediction,
        client_token=client_token,
    )
    # Field validation only: the constraints are the database's job (a duplicate client_token
    # is caught below), and validating them here costs three queries per label.
    annotation.full_clean(
        exclude=["item", "annotator", "prediction"], validate_unique=False, validate_constraints=False
    )
    try:
        with transaction.atomic():
            annotation.save()
    except IntegrityError:
        if client_token:
            existing = Annotation.objects.filter(annotator=user, client_token=client_token).first()
            if existing is not None:
                return existing  # a double submit: the first one stands
        raise
    return annotation


def _check_category(item: Item, category: str) -> str:
    if category and category not in (item.project.categories or []):
        raise FieldError(f"Unknown harm category {category!r} for project {item.project.name}.", field="category")
    return category


def _current_vote(item: Item, user) -> Annotation | None:
    """The user's latest row on ``item`` if it is a vote (not withdrawn)."""
    latest = Annotation.objects.filter(item=item, annotator=user).order_by("-created_at", "-id").first()
    return None if latest is None or latest.kind == Annotation.Kind.UNDO else latest


@transaction.atomic
def annotation_submit(
    *,
    item: Item,
    user,
    role: str,
    label: str,
    category: str = "",
    note: str = "",
    client_token: str = "",
    leased_only: bool = False,
) -> Annotation:
    """Record a human label on an item; releases the item's lease.

    Rules held here, whatever the client: an item leased to someone else is refused; with
    ``leased_only`` (the labeling page) only the item leased to this user is accepted; an
    annotator's new vote is refused once the item has ``project.annotations_per_item`` votes
    (reviewers and admins adjudicate beyond the overlap); a repeat of the user's current vote
    (a double submit, with or without ``client_token``) returns the existing row.
    """
    if label not in Label.values:
        raise FieldError(f"Unknown label {label!r}; expected 'harmful' or 'unharmful'.", field="label")
    item = Item.objects.select_for_update().select_related("project").get(pk=item.pk)
    if client_token:  # a double submit (also one that committed while this one waited for the lock)
        existing = Annotation.objects.filter(annotator=user, client_token=client_token).first()
        if existing is not None:
            return existing
    mine = _current_vote(item, user)
    if (
        mine is not None
        and mine.kind == Annotation.Kind.LABEL
        and mine.label == label
        and mine.category == (category or "")
        and not note
    ):
        return mine  # the same vote again: nothing new to record
    if item.claimed_by_id not in (None, user.pk) and item.claim_is_live():
        raise Conflict("This item is reserved by another annotator right now.")
    if leased_only and item.claimed_by_id != user.pk:
        raise Conflict(f"Item {item.pk} is not the one handed to you; label the item on your screen.")
    overlap = item.project.annotations_per_item
    if ROLE_RANK[role] < ROLE_RANK[Role.REVIEWER] and mine is None and item.annotation_count >= overlap:
        raise Conflict(
            f"Item {item.pk} already has its {overlap} label{'s' if overlap != 1 else ''} "
            "(the project's overlap); it needs no more annotators."
        )
    annotation = _create(
        item=item,
        user=user,
        role=role,
        kind=Annotation.Kind.LABEL,
        label=label,
        category=_check_category(item, category),
        note=note,
        client_token=client_token,
    )
    item.claimed_by = None
    item.claim_expires_at = None
    item_refresh_label(item=item, also_save=("claimed_by", "claim_expires_at"))
    return annotation


@transaction.atomic
def annotation_undo_last(*, user, project) -> Annotation | None:
    """Withdraw the user's most recent label in ``project``; returns the undo row (None if nothing to undo)."""
    last = (
        Annotation.objects.filter(annotator=user, item__project=project)
        .exclude(kind=Annotation.Kind.UNDO)
        .order_by("-created_at", "-id")
        .select_related("item")
        .first()
    )
    if last is None:
        return None
    item = Item.objects.select_for_update().get(pk=last.item_id)
    latest_mine = Annotation.objects.filter(annotator=user, item=item).order_by("-created_at", "-id").first()
    if latest_mine is not None and latest_mine.kind == Annotation.Kind.UNDO:
        return None  # already withdrawn
    undo = _create(item=item, user=user, role=last.role, kind=Annotation.Kind.UNDO)
    item_refresh_label(item=item)
    return undo


@transaction.atomic
def annotation_withdraw(*, user, project, annotation_id: int) -> Annotation:
    """Withdraw one of the user's recent votes (not only the last): an undo row on that item.

    The target must be the user's current vote on its item; a vote they have already withdrawn
    or replaced by a later row of their own is refused (``Conflict``), so an undo never
    removes a decision the user did not see. Other people's votes on the item are untouched.
    """
    target = (
        Annotation.objects.filter(pk=annotation_id, annotator=user, item__project=project)
        .exclude(kind=Annotation.Kind.UNDO)
        .first()
    )
    if target is None:
        raise NotFound("No such label of yours in this project.")
    item = Item.objects.select_for_update().get(pk=target.item_id)
    latest_mine = Annotation.objects.filter(annotator=user, item=item).order_by("-created_at", "-id").first()
    if latest_mine is None or latest_mine.pk != target.pk:
        raise Conflict(f"Your label on item {item.pk} was already undone or replaced; nothing to undo.")
    undo = _create(item=item, user=user, role=target.role, kind=Annotation.Kind.UNDO, prediction=target.prediction)
    item_refresh_label(item=item)
    return undo


@transaction.atomic
def prediction_review(
    *, prediction: Prediction, user, role: str, action: str, note: str = "", client_token: str = ""
) -> Annotation:
    """A reviewer's answer to a pseudo-label: approve it, correct (flip) it, or reject the item.

    ``role`` is the one the view/API gate resolved (reviewer or admin), recorded as provenance.
    """
    if action == "approve":
        kind, label = Annotation.Kind.APPROVE, prediction.pseudo_label
    elif action == "correct":
        kind = Annotation.Kind.CORRECT
        label = Label.UNHARMFUL if prediction.pseudo_label == Label.HARMFUL else Label.HARMFUL
    elif action == "reject":
        kind, label = Annotation.Kind.REJECT, ""
    else:
        raise ApplicationError(f"Unknown review action {action!r}; expected approve, correct or reject.")
    item = Item.objects.select_for_update().get(pk=prediction.item_id)
    annotation = _create(
        item=item,
        user=user,
        role=role,
        kind=kind,
        label=label,
        note=note,
        prediction=prediction,
        client_token=client_token,
    )
    item_refresh_label(item=item)
    return annotation


def predictions_review_bulk(
    *, predictions: list[Prediction], user, role: str, action: str, client_token: str = ""
) -> list[Annotation]:
    """Approve or correct a page of pseudo-labels at once; items labeled meanwhile are left alone.

    Each review is its own transaction so a concurrent reviewer's label on one item does
    not roll back the rest; ``client_token`` (per page render) makes a double submit a no-op.
    """
    if action not in ("approve", "correct"):
        raise ApplicationError("Bulk review only approves or corrects.")
    done = []
    for prediction in predictions:
        token = f"{client_token}:{prediction.pk}" if client_token else ""
        with transaction.atomic():
            item = Item.objects.select_for_update().get(pk=prediction.item_id)
            if item.human_label or item.excluded:
                continue
            done.append(
                prediction_review(prediction=prediction, user=user, role=role, action=action, client_token=token)
            )
    return done
