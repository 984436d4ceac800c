"""Issue 14.13: the labeling counters are right right after each label (they lagged behind a 5 s shared cache)."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from django.urls import reverse

from annotations.models import Item
from annotations.selectors.labels import labeling_counts, labeling_counts_changed

# Real commits: the counts are invalidated when the label's transaction commits, before the next card renders.
pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(params=["locmem", "redis"])
def cache_kind(request, settings):
    """The labeling page under the default per-process cache and under a shared Redis cache."""
    if request.param == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "annotations.cache.ResilientRedisCache",
                "LOCATION": os.environ["CELERY_BROKER_URL"],
                "KEY_PREFIX": f"test-counts-{uuid.uuid4().hex}",
            }
        }
    else:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": f"counts-{uuid.uuid4().hex}",
            }
        }
    return request.param


def _counters(response) -> dict[str, int]:
    """The progress block's numbers, by their caption."""
    html = response.content.decode()
    return {caption: int(n) for n, caption in re.findall(r'<span class="n"[^>]*>(\d+)</span><span>([^<(]+)', html)}


def _label(client, url, label: str):
    page = client.get(url, **HX)
    item = re.search(r'data-item="(\d+)"', page.content.decode()).group(1)
    return client.post(url, {"item": item, "label": label, "client_token": uuid.uuid4().hex}, **HX)


def test_counters_move_with_every_label(cache_kind, client_for, project, make_item):
    for _ in range(3):
        make_item(project)
    client, url = client_for("annotator"), reverse("annotations:labeling_next", kwargs={"slug": project.slug})
    before = _counters(client.get(url, **HX))  # fills the shared cache, if any
    assert (before["harmful seeds"], before["seed items open "]) == (0, 3)
    after = _label(client, url, "harmful")
    assert after.status_code == 200
    shown = _counters(after)
    assert (shown["harmful seeds"], shown["unharmful seeds"], shown["seed items open "]) == (1, 0, 2)
    shown = _counters(_label(client, url, "unharmful"))
    assert (shown["harmful seeds"], shown["unharmful seeds"], shown["seed items open "]) == (1, 1, 1)


def test_nothing_left_to_label_shows_no_open_seed_items(cache_kind, client_for, project, make_item):
    for _ in range(2):
        make_item(project)
    client, url = client_for("annotator"), reverse("annotations:labeling_next", kwargs={"slug": project.slug})
    client.get(url, **HX)
    _label(client, url, "harmful")
    last = _label(client, url, "unharmful")
    assert last.status_code == 200 and "Nothing left to label" in last.content.decode()
    assert _counters(last)["seed items open "] == 0


def test_shared_counts_stand_until_a_change_is_announced(settings, project, make_item):
    settings.CACHES = {
        "default": {
            "BACKEND": "annotations.cache.ResilientRedisCache",
            "LOCATION": os.environ["CELERY_BROKER_URL"],
            "KEY_PREFIX": f"test-counts-{uuid.uuid4().hex}",
        }
    }
    make_item(project)
    assert labeling_counts(project=project)["total"] == 1
    Item.objects.create(project=project, text="added behind the services' back", content_hash="x" * 64, split="seed")
    assert labeling_counts(project=project)["total"] == 1  # shared: the cached value stands until a change is announced
    labeling_counts_changed(project_id=project.pk)
    assert labeling_counts(project=project)["total"] == 2
