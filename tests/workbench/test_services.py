"""Workbench services called directly (the REST API calls the same functions)."""

from __future__ import annotations

import pytest

from annotations.errors import ApplicationError
from annotations.models import Item, Role
from annotations.services.labels import predictions_review_bulk
from annotations.services.variants import variant_review


@pytest.mark.django_db
def test_variant_review_needs_a_known_reason(project, users, make_item, make_variant):
    """(Who may review is the gate's rule: tests/security/test_authz_matrix.py.)"""
    variant = make_variant(make_item(project, split=Item.Split.POOL), "a rewrite")
    with pytest.raises(ApplicationError, match="^Pick a reject reason: "):
        variant_review(variant=variant, user=users["reviewer"], action="reject", reason="")
    done = variant_review(variant=variant, user=users["reviewer"], action="reject", reason="label_changed")
    assert done.status == "rejected" and done.reject_reason == "label_changed" and done.reviewed_at
    done = variant_review(variant=variant, user=users["admin"], action="approve")
    assert done.status == "approved" and done.reject_reason == "" and done.reviewer == users["admin"]


@pytest.mark.django_db
def test_bulk_review_leaves_items_labeled_meanwhile_alone(project, users, make_item, active_round, make_prediction):
    rnd = active_round(project)
    preds = [make_prediction(make_item(project, split=Item.Split.POOL), rnd, p=0.9) for _ in range(3)]
    Item.objects.filter(pk=preds[1].item_id).update(human_label="unharmful")
    done = predictions_review_bulk(predictions=preds, user=users["reviewer"], role=Role.REVIEWER, action="correct")
    assert [a.prediction_id for a in done] == [preds[0].pk, preds[2].pk]
    assert Item.objects.get(pk=preds[0].item_id).human_label == "unharmful"
    with pytest.raises(ApplicationError, match=r"^Bulk review only approves or corrects\.$"):
        predictions_review_bulk(predictions=preds, user=users["reviewer"], role=Role.REVIEWER, action="reject")
