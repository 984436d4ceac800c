"""Seed-labeling leases: who gets which item, overlap, skip, undo, and concurrency on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from annotations.models import Annotation, Item, Role
from annotations.services.claims import item_claim_next, item_claim_release
from annotations.services.labels import annotation_submit, annotation_undo_last


@pytest.mark.django_db
def test_claim_hands_seed_items_first_then_unlabeled_evaluation_items_never_pool(project, users, make_item):
    pool = make_item(project, split=Item.Split.POOL)
    test_item = make_item(project, split=Item.Split.TEST)
    seed = make_item(project, split=Item.Split.SEED)
    ann = users["annotator"]
    first = item_claim_next(project=project, user=ann)
    assert first.pk == seed.pk and first.claimed_by_id == ann.pk
    annotation_submit(item=first, user=ann, role=Role.ANNOTATOR, label="harmful")
    assert item_claim_next(project=project, user=ann).pk == test_item.pk
    annotation_submit(item=test_item, user=ann, role=Role.ANNOTATOR, label="unharmful")
    assert item_claim_next(project=project, user=ann) is None
    assert Item.objects.get(pk=pool.pk).claimed_by_id is None


@pytest.mark.django_db
def test_reload_keeps_the_same_item_and_others_get_a_different_one(project, users, make_item):
    a, b = make_item(project), make_item(project)
    first = item_claim_next(project=project, user=users["annotator"])
    assert item_claim_next(project=project, user=users["annotator"]).pk == first.pk
    other = item_claim_next(project=project, user=users["reviewer"])
    assert {first.pk, other.pk} == {a.pk, b.pk}


@pytest.mark.django_db
def test_expired_lease_is_handed_to_someone_else(project, users, make_item):
    item = make_item(project)
    item_claim_next(project=project, user=users["annotator"])
    assert item_claim_next(project=project, user=users["reviewer"]) is None
    Item.objects.filter(pk=item.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    assert item_claim_next(project=project, user=users["reviewer"]).pk == item.pk


@pytest.mark.django_db
def test_overlap_hands_an_item_to_n_different_annotators_then_stops(project, users, make_item):
    project.annotations_per_item = 2
    project.save()
    item = make_item(project)
    for who in ("annotator", "reviewer"):
        got = item_claim_next(project=project, user=users[who])
        assert got.pk == item.pk
        annotation_submit(item=got, user=users[who], role=Role.ANNOTATOR, label="harmful")
        assert item_claim_next(project=project, user=users[who]) is None  # never twice to one person
    assert item_claim_next(project=project, user=users["admin"]) is None  # two votes reached


@pytest.mark.django_db
def test_skipped_item_comes_back_only_when_nothing_else_is_left(project, users, make_item):
    a, b = make_item(project), make_item(project)
    ann = users["annotator"]
    assert item_claim_next(project=project, user=ann).pk == a.pk
    item_claim_release(item=a, user=ann)
    assert item_claim_next(project=project, user=ann, skipped_ids=[a.pk]).pk == b.pk
    annotation_submit(item=b, user=ann, role=Role.ANNOTATOR, label="unharmful")
    assert item_claim_next(project=project, user=ann, skipped_ids=[a.pk]).pk == a.pk


@pytest.mark.django_db
def test_submit_on_an_item_leased_to_someone_else_is_refused(project, users, make_item):
    from annotations.errors import ApplicationError

    item = make_item(project)
    item_claim_next(project=project, user=users["annotator"])
    with pytest.raises(ApplicationError, match="reserved by another annotator"):
        annotation_submit(item=item, user=users["reviewer"], role=Role.REVIEWER, label="harmful")


@pytest.mark.django_db
def test_undo_withdraws_the_vote(project, users, make_item):
    item = make_item(project)
    ann = users["annotator"]
    annotation_submit(item=item, user=ann, role=Role.ANNOTATOR, label="harmful")
    assert Item.objects.get(pk=item.pk).human_label == "harmful"
    annotation_undo_last(user=ann, project=project)
    item.refresh_from_db()
    assert item.human_label == "" and item.annotation_count == 0


def _in_thread(fn, n: int):
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    close_old_connections()
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_receive_the_same_item(project, make_user, make_item):
    people = [make_user(f"ann{i}", Role.ANNOTATOR, project) for i in range(6)]
    for _ in range(4):
        make_item(project)

    got = _in_thread(lambda i: getattr(item_claim_next(project=project, user=people[i]), "pk", None), len(people))
    handed = [pk for pk in got if pk is not None]
    assert len(handed) == 4 and len(set(handed)) == 4  # 4 items, 6 people: 2 get nothing, none shared
    assert Item.objects.filter(claimed_by__isnull=False).count() == 4


@pytest.mark.django_db(transaction=True)
def test_double_submitted_label_is_stored_once(project, users, make_item):
    item = make_item(project)
    ann = users["annotator"]
    item_claim_next(project=project, user=ann)

    def submit(_):
        return annotation_submit(
            item=item, user=ann, role=Role.ANNOTATOR, label="harmful", client_token="same-token-123"
        ).pk

    ids = _in_thread(submit, 4)
    assert len(set(ids)) == 1
    assert Annotation.objects.filter(item=item).count() == 1
    assert Item.objects.get(pk=item.pk).annotation_count == 1


@pytest.mark.django_db
def test_conditional_update_fallback_hands_out_distinct_items(project, users, make_item, monkeypatch):
    """The SQLite path (no SKIP LOCKED): an atomic conditional UPDATE decides who wins."""
    from annotations.services import claims

    monkeypatch.setattr(connection.features, "has_select_for_update_skip_locked", False)
    a, b = make_item(project), make_item(project)
    first = claims.item_claim_next(project=project, user=users["annotator"])
    second = claims.item_claim_next(project=project, user=users["reviewer"])
    assert {first.pk, second.pk} == {a.pk, b.pk}
    assert claims.item_claim_next(project=project, user=users["admin"]) is None
