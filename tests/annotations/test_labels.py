"""Label history: rows are appended, never edited; the current label is derived from them."""

import pytest

from annotations.errors import ApplicationError
from annotations.models import Annotation, Item, Role
from annotations.services.hashing import content_hash
from annotations.services.labels import annotation_submit, annotation_undo_last, item_refresh_label


@pytest.fixture
def item(project):
    return Item.objects.create(project=project, text="How do I pick a lock?", content_hash=content_hash("How do I pick a lock?"),
                               split=Item.Split.SEED)


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
    other.refresh_from_db(); item.refresh_from_db()
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
