"""Label history: rows are appended, never edited; the current label is derived from them."""

import pytest

from annotations.errors import ApplicationError
from annotations.models import Annotation, Item, Role
from annotations.services.hashing import content_hash
from annotations.services.labels import annotation_submit, annotation_undo_last, item_refresh_label


@pytest.fixture
def item(project):
    return Item.objects.create(
        project=project,
        text="How do I pick a lock?",
        content_hash=content_hash("How do I pick a lock?"),
        split=Item.Split.SEED,
    )


@pytest.mark.django_db
def test_correction_is_a_new_row_and_history_is_kept(item, users):
    ann = users["annotator"]
    first = annotation_submit(item=item, user=ann, role=Role.ANNOTATOR, label="harmful")
    annotation_submit(item=item, user=ann, role=Role.ANNOTATOR, label="unharmful")
    item.refresh_from_db()
    assert item.human_label == "unharmful"
    assert list(Annotation.objects.filter(item=item).values_list("label", flat=True)) == ["harmful", "unharmful"]
    first.refresh_from_db()
    assert first.label == "harmful"  # the old row is untouched


@pytest.mark.django_db
def test_reviewer_outranks_annotator_majority(item, users, make_user, project):
    project.annotations_per_item = 2  # two annotators on one item: the overlap must allow it
    project.save(update_fields=["annotations_per_item"])
    a2 = make_user("ann2", Role.ANNOTATOR, project)
    annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful")
    annotation_submit(item=item, user=a2, role=Role.ANNOTATOR, label="harmful")
    annotation_submit(item=item, user=users["reviewer"], role=Role.REVIEWER, label="unharmful")
    item.refresh_from_db()
    assert (item.human_label, item.annotation_count) == ("unharmful", 3)


@pytest.mark.django_db
def test_undo_withdraws_only_my_last_label(item, users, project):
    other = Item.objects.create(project=project, text="t2", content_hash=content_hash("t2"))
    annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful", category="violence")
    annotation_submit(item=other, user=users["annotator"], role=Role.ANNOTATOR, label="unharmful")
    undo = annotation_undo_last(user=users["annotator"], project=project)
    assert undo.kind == "undo" and undo.item_id == other.pk
    other.refresh_from_db()
    item.refresh_from_db()
    assert other.human_label == "" and item.human_label == "harmful" and item.human_category == "violence"
    assert annotation_undo_last(user=users["admin"], project=project) is None


@pytest.mark.django_db
def test_unknown_label_or_category_is_refused(item, users):
    with pytest.raises(ApplicationError, match="Unknown label"):
        annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="toxic")
    with pytest.raises(ApplicationError, match="Unknown harm category"):
        annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful", category="spam")
    assert not Annotation.objects.exists()


@pytest.mark.django_db
def test_double_submit_with_same_client_token_is_stored_once(item, users):
    a = annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful", client_token="t-1")
    b = annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful", client_token="t-1")
    assert a.pk == b.pk and Annotation.objects.count() == 1


@pytest.mark.django_db
def test_refresh_label_with_no_history_clears_fields(item):
    item.human_label = "harmful"
    item.save()
    item_refresh_label(item=item)
    item.refresh_from_db()
    assert (item.human_label, item.annotation_count, item.excluded) == ("", 0, False)


@pytest.mark.django_db
def test_an_annotator_beyond_the_overlap_is_refused_and_a_reviewer_is_not(item, users, make_user, project):
    """Issue 15, defect 4: annotations_per_item was not enforced when a label was saved."""
    from annotations.errors import Conflict

    project.annotations_per_item = 2
    project.save(update_fields=["annotations_per_item"])
    annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful")
    annotation_submit(
        item=item, user=make_user("ann2", Role.ANNOTATOR, project), role=Role.ANNOTATOR, label="unharmful"
    )
    with pytest.raises(Conflict, match=f"Item {item.pk} already has its 2 labels"):
        annotation_submit(
            item=item, user=make_user("ann3", Role.ANNOTATOR, project), role=Role.ANNOTATOR, label="harmful"
        )
    # The first annotator may still change their own vote, and a reviewer adjudicates beyond the cap.
    annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="unharmful")
    annotation_submit(item=item, user=users["reviewer"], role=Role.REVIEWER, label="harmful")
    item.refresh_from_db()
    assert (item.annotation_count, item.human_label) == (3, "harmful")


@pytest.mark.django_db
def test_a_double_submit_without_client_token_is_stored_once(item, users):
    first = annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful")
    again = annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful")
    assert again.pk == first.pk and Annotation.objects.filter(item=item).count() == 1


@pytest.mark.django_db
def test_the_labeling_page_accepts_only_the_item_handed_to_the_user(item, users, project, client_for):
    from django.urls import reverse

    other = Item.objects.create(project=project, text="another seed item", content_hash="other", split="seed")
    client = client_for("annotator")
    url = reverse("annotations:labeling_next", args=[project.slug])
    client.get(url)  # leases the first item (``item``)
    refused = client.post(url, {"item": other.pk, "label": "harmful", "client_token": "t-other"})
    assert refused.status_code == 422
    assert f"Item {other.pk} is not the one handed to you" in refused.content.decode()
    assert not Annotation.objects.filter(item=other).exists()
    accepted = client.post(url, {"item": item.pk, "label": "harmful", "client_token": "t-item"})
    assert accepted.status_code == 302 and Annotation.objects.filter(item=item).count() == 1
