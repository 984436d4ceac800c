"""Issue 16, hot paths: /v1/moderations runs on two small SQL reads and an O(1) throttle.

It caches no authorization decision."""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest
from django.utils import timezone

from annotations.api import throttling
from annotations.models import ApiToken, Membership, Role
from annotations.selectors import serving

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(make_model_version):
    return make_model_version(threshold=0.5)


def test_a_token_request_costs_two_queries_token_and_project_with_model(api_for, served, django_assert_num_queries):
    client = api_for("annotator")
    assert client.post("/v1/moderations", {"input": "warm"}, format="json").status_code == 200  # last_used_at write
    with django_assert_num_queries(2):
        r = client.post("/v1/moderations", {"input": ["a", "b"]}, format="json")
    assert r.status_code == 200 and r.json()["model"] == served.name


def test_a_named_project_costs_the_same_two_queries(api_for, served, other_project, users, django_assert_num_queries):
    Membership.objects.create(project=other_project, user=users["annotator"], role=Role.ANNOTATOR)
    client = api_for("annotator")
    assert client.post("/v1/moderations", {"input": "warm", "project": "safety"}, format="json").status_code == 200
    with django_assert_num_queries(2):
        r = client.post("/v1/moderations", {"input": "x", "project": "safety"}, format="json")
    assert r.status_code == 200


def test_removing_a_membership_takes_effect_on_the_next_request(api_for, served, users):
    client = api_for("annotator")
    assert client.post("/v1/moderations", {"input": "x", "project": "safety"}, format="json").status_code == 200
    Membership.objects.filter(user=users["annotator"]).delete()
    r = client.post("/v1/moderations", {"input": "x", "project": "safety"}, format="json")
    assert r.status_code == 404


def test_revoking_a_token_takes_effect_on_the_next_request(api_for, served, users):
    client = api_for("annotator")
    assert client.post("/v1/moderations", {"input": "x"}, format="json").status_code == 200
    ApiToken.objects.filter(user=users["annotator"]).update(revoked_at=timezone.now())
    assert client.post("/v1/moderations", {"input": "x"}, format="json").status_code == 401


def test_token_read_converts_columns_like_the_orm(token_for, users):
    from annotations.services.tokens import token_hash

    key = token_for("reviewer")
    token = serving.token_with_user(key_hash=token_hash(key))
    orm = ApiToken.objects.select_related("user").get(key_hash=token_hash(key))
    assert (token.pk, token.scope, token.created_at, token.user.username, token.user.is_superuser) == (
        orm.pk,
        orm.scope,
        orm.created_at,
        orm.user.username,
        orm.user.is_superuser,
    )
    assert token.created_at.tzinfo is not None


def test_serving_targets_give_role_and_active_model(users, served, project, other_project):
    target = serving.serving_target_by_slug(user=users["reviewer"], slug="safety")
    assert (target.project.pk, target.role, target.model_version.pk) == (project.pk, Role.REVIEWER, served.pk)
    outside = serving.serving_target_by_slug(user=users["outsider"], slug="safety")
    assert outside.role is None  # the project exists; the caller is no member
    assert [t.project.slug for t in serving.serving_targets_of_user(user=users["outsider"])] == ["other"]
    assert serving.serving_target_by_slug(user=users["reviewer"], slug="nope") is None


def test_a_superuser_is_admin_of_every_project(make_user, project, other_project):
    root = make_user("root", is_superuser=True)
    targets = serving.serving_targets_of_user(user=root, limit=5)
    assert sorted(t.project.slug for t in targets) == ["other", "safety"]
    assert {t.role for t in targets} == {Role.ADMIN}


def test_the_throttle_window_slides_across_the_boundary(api_for, served, settings, monkeypatch):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100/min", "moderation": "2/min"},
    }
    client = api_for("annotator")
    clock = {"now": 60 * 1000 + 59.0}  # one second before a window boundary
    monkeypatch.setattr(throttling.TokenRateThrottle, "clock", staticmethod(lambda: clock["now"]))
    assert [client.post("/v1/moderations", {"input": "x"}, format="json").status_code for _ in range(2)] == [200] * 2
    clock["now"] += 2  # a fixed window would start counting from zero here
    r = client.post("/v1/moderations", {"input": "x"}, format="json")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60


def test_the_throttle_counts_in_redis(api_for, served, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "annotations.cache.ResilientRedisCache",
            "LOCATION": os.environ["CELERY_BROKER_URL"],
            "KEY_PREFIX": f"test-throttle-{uuid.uuid4().hex}",
        }
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100/min", "moderation": "2/min"},
    }
    client = api_for("annotator")
    codes = [client.post("/v1/moderations", {"input": "x"}, format="json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.parametrize(
    ("hits", "prev", "elapsed", "expected"),
    [
        (3, 0, 10.0, 50.0 + 60 * (1 - 1 / 3)),  # over in this window: wait for the next one and let it slide
        (1, 4, 30.0, 60 * (1 - 0 / 4) - 30.0),  # room in this window once the previous window slides out
    ],
)
def test_retry_after_is_when_one_more_request_fits(hits, prev, elapsed, expected):
    wait = throttling.TokenRateThrottle._seconds_until_free(2, 60, elapsed, hits, prev)
    assert wait == pytest.approx(expected)
    later = elapsed + wait
    if later < 60:
        assert prev * (1 - later / 60) + hits + 1 <= 2 + 1e-9
    else:
        assert hits * (1 - (later - 60) / 60) + 1 <= 2 + 1e-9


def test_the_app_loads_the_scorer_in_the_configured_runtime(settings, tiny_model_dir, api_for, served):
    import torch

    from annotations.services.engine import scorer_load

    settings.UMBRA_ENGINE = dataclasses.replace(settings.UMBRA_ENGINE, scorer_runtime="int8")
    scorer = scorer_load(path=tiny_model_dir)
    assert scorer.runtime == "int8"
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in scorer.model.encoder.modules())
    r = api_for("annotator").post("/v1/moderations", {"input": ["a", "b"]}, format="json")
    assert r.status_code == 200 and len(r.json()["results"]) == 2  # served by the int8 scorer
