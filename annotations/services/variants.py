"""Reviewer decisions on machine-written variants (augmentations, adversarial candidates)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import AugmentedVariant

REJECT_REASONS = {
    "intent_changed": "Intent not preserved",
    "label_changed": "Label changed",
    "gibberish": "Gibberish",
}
ACTIONS = ("approve", "reject")


@transaction.atomic
def variant_review(*, variant: AugmentedVariant, user, action: str, reason: str = "") -> AugmentedVariant:
    """Approve a variant (used by the next round) or reject it with a reason; re-review overrides."""
    if action not in ACTIONS:
        raise ApplicationError(f"Unknown action {action!r}; expected approve or reject.")
    locked = AugmentedVariant.objects.select_for_update().select_related("item__project").get(pk=variant.pk)
    if action == "reject":
        if reason not in REJECT_REASONS:
            raise ApplicationError(
                "Pick a reject reason: " + ", ".join(f"{k} ({v})" for k, v in REJECT_REASONS.items()) + "."
            )
        locked.status = AugmentedVariant.Status.REJECTED
        locked.reject_reason = reason
    else:
        locked.status = AugmentedVariant.Status.APPROVED
        locked.reject_reason = ""
    locked.reviewer = user
    locked.reviewed_at = timezone.now()
    locked.save(update_fields=["status", "reject_reason", "reviewer", "reviewed_at"])
    from annotations.services.adversarial import hard_example_sync  # confirmed hard examples -> seed items

    hard_example_sync(variant=locked, user=user)
    return locked
