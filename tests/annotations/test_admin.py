"""Issue 15, defect 13: a superuser could delete human labels in Django admin (the history is append-only)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Annotation, Item, Role
from annotations.services.labels import annotation_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeled(project, users):
    item = Item.objects.create(project=project, text="labeled once", content_hash="lo", split="seed")
    return annotation_submit(item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful")


@pytest.fixture
def superuser_client(make_user) -> Client:
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_a_superuser_cannot_delete_change_or_add_labels_in_admin(superuser_client, labeled):
    delete = reverse("admin:annotations_annotation_delete", args=[labeled.pk])
    assert superuser_client.get(delete).status_code == 403
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = superuser_client.post(
        reverse("admin:annotations_annotation_changelist"),
        {"action": "delete_selected", "_selected_action": [labeled.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert superuser_client.get(reverse("admin:annotations_annotation_add")).status_code == 403
    listing = superuser_client.get(reverse("admin:annotations_annotation_changelist"))
    assert listing.status_code == 200  # still readable for audits
    assert Annotation.objects.filter(pk=labeled.pk).exists()


def test_deleting_a_labeled_item_in_admin_is_refused_too(superuser_client, labeled):
    url = reverse("admin:annotations_item_delete", args=[labeled.item_id])
    response = superuser_client.post(url, {"post": "yes"})
    assert response.status_code == 403  # its labels would be deleted with it
    assert Item.objects.filter(pk=labeled.item_id).exists() and Annotation.objects.filter(pk=labeled.pk).exists()
