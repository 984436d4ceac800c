"""The focused review flow over HTTP: one active card, the "just reviewed" strip, undo of any recent decision."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotations.models import Annotation, Item

HX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def preds(project, make_item, active_round, make_prediction):
    rnd = active_round(project)
    return [
        make_prediction(
            make_item(project, text=f"pool words {i}", split=Item.Split.POOL),
            rnd,
            p=0.8,
            priority=50 - i,
            reason="the heads disagree (0.80 / 0.20); its margin keeps flipping (crossed zero 2x across epochs)",
        )
        for i in range(6)
    ]


def _active(html: str) -> int:
    return int(re.search(r'class="card review-card active" id="prediction-(\d+)"', html).group(1))


def _review(client, pred, action="approve"):
    url = reverse("annotations:prediction_review", kwargs={"slug": "safety", "pk": pred.pk})
    return client.post(url, {"action": action, "client_token": f"t{pred.pk}", "next": "/p/safety/review/"}, **HX)


def test_page_shows_one_active_card_with_plain_reasons_and_technical_detail_folded(client_for, preds):
    html = client_for("reviewer").get(reverse("annotations:review_queue", kwargs={"slug": "safety"})).content.decode()
    assert html.count("review-card active") == 1 and _active(html) == preds[0].pk
    assert "The model&#x27;s heads disagree about it." in html
    folded = html[html.index('<details class="tech">') : html.index("</details>", html.index('<details class="tech">'))]
    assert "the heads disagree (0.80 / 0.20)" in folded and "review priority 50.000" in folded


def test_an_action_answers_with_the_next_card_and_the_strip(client_for, preds):
    response = _review(client_for("reviewer"), preds[0])
    html = response.content.decode()
    assert response.status_code == 200 and _active(html) == preds[1].pk
    assert 'id="review-queue"' in html and "<html" not in html
    assert f'data-annotation="{Annotation.objects.get().pk}"' in html and "approved harmful" in html


def test_undo_of_the_third_last_decision_brings_that_item_back(client_for, preds):
    client = client_for("reviewer")
    for pred, action in zip(preds[:4], ["approve", "correct", "reject", "approve"], strict=True):
        assert _review(client, pred, action).status_code == 200
    third_last = Annotation.objects.get(prediction=preds[1])
    response = client.post(
        reverse("annotations:prediction_review_undo", kwargs={"slug": "safety"}),
        {"annotation": third_last.pk, "next": "/p/safety/review/"},
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 200 and _active(html) == preds[1].pk
    assert Item.objects.get(pk=preds[1].item_id).human_label == ""
    assert [Item.objects.get(pk=p.item_id).human_label for p in (preds[0], preds[3])] == ["harmful", "harmful"]
    assert Item.objects.get(pk=preds[2].item_id).excluded
    undo = Annotation.objects.get(kind="undo")
    assert undo.item_id == preds[1].item_id and undo.prediction_id == preds[1].pk  # appended, nothing edited
    assert re.search(rf'class="recent undone" data-annotation="{third_last.pk}"', html)


def test_undo_of_a_decision_already_undone_is_refused(client_for, preds):
    client = client_for("reviewer")
    _review(client, preds[0])
    first = Annotation.objects.get()
    url = reverse("annotations:prediction_review_undo", kwargs={"slug": "safety"})
    assert client.post(url, {"annotation": first.pk}, **HX).status_code == 200
    response = client.post(url, {"annotation": first.pk}, **HX)
    assert response.status_code == 422 and b"already undone or replaced" in response.content
    assert Annotation.objects.filter(kind="undo").count() == 1


def test_undo_of_someone_elses_decision_is_not_found(client_for, preds, users):
    _review(client_for("admin"), preds[0])
    theirs = Annotation.objects.get()
    response = client_for("reviewer").post(
        reverse("annotations:prediction_review_undo", kwargs={"slug": "safety"}), {"annotation": theirs.pk}, **HX
    )
    assert response.status_code == 404 and not Annotation.objects.filter(kind="undo").exists()


def test_agreement_filter_names_weights_as_weights(client_for, preds):
    html = client_for("reviewer").get(reverse("annotations:review_queue", kwargs={"slug": "safety"})).content.decode()
    assert "Other heads agree, only some pass — training weight 3" in html
    assert "only some pass (3)" not in html


def test_labeling_page_can_undo_the_label_given_five_items_ago(client_for, project, make_item):
    """Issue 14.14: not only the last label can be taken back."""
    items = [make_item(project, text=f"label me {i}") for i in range(7)]
    client = client_for("annotator")
    url = reverse("annotations:labeling_next", kwargs={"slug": "safety"})
    client.get(url)
    for i, item in enumerate(items[:6]):
        client.post(url, {"item": item.pk, "label": "harmful", "client_token": f"l{i}"}, **HX)
    recent = client.get(reverse("annotations:labeling_recent", kwargs={"slug": "safety"}), **HX).content.decode()
    assert recent.count('class="recent"') == 6 and f"/items/{items[1].pk}/" in recent
    fifth_last = Annotation.objects.get(item=items[1])
    response = client.post(
        reverse("annotations:labeling_undo", kwargs={"slug": "safety"}),
        {"annotation": fifth_last.pk, "item": items[6].pk},
        **HX,
    )
    assert response.status_code == 200 and f'data-item="{items[1].pk}"'.encode() in response.content
    assert "labels-changed" in response["HX-Trigger"]
    assert [Item.objects.get(pk=i.pk).human_label for i in items[:6]] == ["harmful", "", *["harmful"] * 4]
    recent = client.get(reverse("annotations:labeling_recent", kwargs={"slug": "safety"}), **HX).content.decode()
    assert f'class="recent undone" data-annotation="{fifth_last.pk}"' in recent
