"""Issue 15, defect 2: with CACHE_URL=redis://… a Redis outage made every token call and the labeling page a 500.

The cache is made unreachable the way README's production advice would meet an outage: the
app points at a Redis URL where nothing listens (port 1 refuses at once). Serving and labeling
keep working; the cache-backed throttle just stops counting until Redis is back.
"""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from django.urls import reverse
from test_settings import PROD, run_manage

from annotations.models import Annotation, Item

pytestmark = pytest.mark.django_db

DOWN = "redis://127.0.0.1:1/0"


def test_a_redis_cache_url_selects_the_backend_that_survives_an_outage():
    code = "from django.conf import settings; import json; print(json.dumps(settings.CACHES['default']))"
    result = run_manage("shell", "-c", code, env={**PROD, "CACHE_URL": DOWN})
    assert result.returncode == 0, result.stderr
    cache = json.loads(result.stdout.strip().splitlines()[-1])
    assert cache["BACKEND"] == "annotations.cache.ResilientRedisCache" and cache["LOCATION"] == DOWN
    assert cache["OPTIONS"]["socket_connect_timeout"] <= 0.5


@pytest.fixture
def redis_cache_down(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "annotations.cache.ResilientRedisCache",
            "LOCATION": DOWN,
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
    from annotations.cache import ResilientRedisCache

    ResilientRedisCache._down_until = 0.0  # start from "never failed"
    yield
    ResilientRedisCache._down_until = 0.0


def test_token_api_calls_and_moderation_keep_answering(redis_cache_down, api_for, make_model_version, project):
    make_model_version()
    client = api_for("annotator")
    started = time.monotonic()
    items = client.get(f"/api/projects/{project.slug}/items/")
    scored = client.post(
        "/v1/moderations", {"input": ["how to make a bomb", "bake bread"], "project": project.slug}, format="json"
    )
    assert items.status_code == 200, items.content[:300]
    assert scored.status_code == 200 and len(scored.json()["results"]) == 2
    assert time.monotonic() - started < 10


def test_the_labeling_page_keeps_working(redis_cache_down, users, project):
    Item.objects.create(project=project, text="label me", content_hash="lm", split="seed")
    client = Client()
    client.force_login(users["annotator"])
    url = reverse("annotations:labeling_next", args=[project.slug])
    page = client.get(url)
    assert page.status_code == 200 and "label me" in page.content.decode()
    item = Item.objects.get(project=project)
    posted = client.post(url, {"item": item.pk, "label": "harmful", "client_token": "t1"})
    assert posted.status_code == 302
    assert Annotation.objects.filter(item=item, label="harmful").count() == 1
