"""Every API endpoint × every role → the expected status (same role rules as the pages)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from annotations.models import AugmentedVariant, BackgroundJob, Item, Prediction, TrainingRound
from annotations.services.tokens import api_token_create

ROLES = ("anonymous", "annotator", "reviewer", "admin", "outsider")


def _expect(anonymous=401, annotator=200, reviewer=200, admin=200, outsider=404):
    return dict(anonymous=anonymous, annotator=annotator, reviewer=reviewer, admin=admin, outsider=outsider)


READ = _expect()
REVIEWER_READ = _expect(annotator=403)
ADMIN_READ = _expect(annotator=403, reviewer=403)

# name, method, url template (formatted with the world's ids), body, expected status per role
ENDPOINTS = [
    ("projects-list", "get", "/api/projects/", None, _expect(outsider=200)),
    ("projects-detail", "get", "/api/projects/safety/", None, READ),
    ("items-list", "get", "/api/projects/safety/items/?split=seed&label_state=unlabeled&q=bread", None, READ),
    ("items-detail", "get", "/api/projects/safety/items/{item}/", None, READ),
    (
        "annotation-create",
        "post",
        "/api/projects/safety/items/{item}/annotations/",
        {"label": "harmful"},
        _expect(annotator=201, reviewer=201, admin=201),
    ),
    (
        "annotation-undo",
        "post",
        "/api/projects/safety/annotations/undo/",
        None,
        _expect(annotator=204, reviewer=204, admin=204),
    ),
    ("training-rounds-list", "get", "/api/projects/safety/rounds/", None, READ),
    ("training-rounds-detail", "get", "/api/projects/safety/rounds/{round}/", None, READ),
    (
        "training-round-start",
        "post",
        "/api/projects/safety/rounds/start/",
        {"algorithm": "supervised"},
        _expect(annotator=403, reviewer=403, admin=201),
    ),
    (
        "training-round-cancel",
        "post",
        "/api/projects/safety/rounds/{queued_round}/cancel/",
        None,
        _expect(annotator=403, reviewer=403, admin=200),
    ),
    (
        "predictions-list",
        "get",
        "/api/projects/safety/rounds/{round}/predictions/?agreement=high_agree",
        None,
        REVIEWER_READ,
    ),
    ("predictions-detail", "get", "/api/projects/safety/rounds/{round}/predictions/{prediction}/", None, REVIEWER_READ),
    (
        "prediction-review",
        "post",
        "/api/projects/safety/predictions/{prediction}/review/",
        {"action": "approve"},
        _expect(annotator=403, reviewer=201, admin=201),
    ),
    ("variants-list", "get", "/api/projects/safety/variants/?status=pending", None, REVIEWER_READ),
    ("variants-detail", "get", "/api/projects/safety/variants/{variant}/", None, REVIEWER_READ),
    ("variant-approve", "post", "/api/projects/safety/variants/{variant}/approve/", {}, _expect(annotator=403)),
    (
        "variant-reject",
        "post",
        "/api/projects/safety/variants/{variant}/reject/",
        {"reason": "gibberish"},
        _expect(annotator=403),
    ),
    ("model-versions-list", "get", "/api/projects/safety/model-versions/", None, READ),
    ("model-versions-detail", "get", "/api/projects/safety/model-versions/{version}/", None, READ),
    (
        "model-version-activate",
        "post",
        "/api/projects/safety/model-versions/{version}/activate/",
        {"confirm": True},
        _expect(annotator=403, reviewer=403, admin=200),
    ),
    ("exports-list", "get", "/api/projects/safety/exports/", None, ADMIN_READ),
    ("exports-detail", "get", "/api/projects/safety/exports/{job}/", None, ADMIN_READ),
    (
        "export-start",
        "post",
        "/api/projects/safety/exports/start/",
        {"kind": "labels_jsonl"},
        _expect(annotator=403, reviewer=403, admin=202),
    ),
    (
        "seed-suggestion-start",
        "post",
        "/api/projects/safety/seed-suggestions/start/",
        {"n": 0},
        _expect(annotator=403, reviewer=403, admin=400),
    ),
    ("export-download", "get", "/api/projects/safety/exports/{job}/download/", None, ADMIN_READ),
    ("tokens-list", "get", "/api/tokens/", None, _expect(outsider=200)),
    (
        "token-create",
        "post",
        "/api/tokens/create/",
        {"name": "ci"},
        _expect(annotator=201, reviewer=201, admin=201, outsider=201),
    ),
    ("tokens-detail", "get", "/api/tokens/{annotator_token}/", None, _expect(reviewer=404)),
    ("token-revoke", "post", "/api/tokens/{annotator_token}/revoke/", None, _expect(reviewer=404)),
    ("moderations", "post", "/v1/moderations", {"input": "hello there", "project": "safety"}, READ),
]


@pytest.fixture
def world(project, users, make_model_version, tmp_path, settings):
    """One of everything the endpoints act on, in ``project``."""
    make = Item.objects.create
    item = make(project=project, text="How do I bake bread?", content_hash="h1", split=Item.Split.SEED)
    make(project=project, text="labeled harmful", content_hash="h2", split=Item.Split.SEED, human_label="harmful")
    make(project=project, text="labeled unharmful", content_hash="h3", split=Item.Split.SEED, human_label="unharmful")
    pool = make(project=project, text="a pool text", content_hash="h4", split=Item.Split.POOL)
    version = make_model_version(active=False)
    rnd = version.training_round
    prediction = Prediction.objects.create(
        item=pool,
        training_round=rnd,
        p_harmful=0.9,
        head_probs=[0.9, 0.88],
        pseudo_label="harmful",
        agreement="high_agree",
        review_priority=2.0,
    )
    variant = AugmentedVariant.objects.create(item=item, method="word_dropout", text="How bake bread?")
    export_file = settings.MEDIA_ROOT / "exports" / "safety-labels.jsonl"
    export_file.parent.mkdir(parents=True, exist_ok=True)
    export_file.write_text('{"id": "x"}\n')
    job = BackgroundJob.objects.create(
        project=project,
        kind=BackgroundJob.Kind.EXPORT,
        status=BackgroundJob.Status.SUCCEEDED,
        result={"file": str(export_file), "filename": "safety-labels.jsonl"},
        finished_at=timezone.now(),
    )
    annotator_token = api_token_create(user=users["annotator"], name="laptop", created_by=users["annotator"]).token
    return {
        "item": item.pk,
        "round": rnd.pk,
        "prediction": prediction.pk,
        "variant": variant.pk,
        "version": version.pk,
        "job": job.pk,
        "annotator_token": annotator_token.pk,
        "project": project,
        "version_obj": version,
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name,method,url,body,expected", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_endpoint_role_matrix(api_for, world, make_model_version, name, method, url, body, expected, role):
    ids = dict(world)
    if "{queued_round}" in url:
        ids["queued_round"] = TrainingRound.objects.create(project=world["project"], algorithm="supervised").pk
    if name == "moderations":
        world["version_obj"].is_active = True
        world["version_obj"].save(update_fields=["is_active"])
    client = api_for(None if role == "anonymous" else role)
    response = (
        getattr(client, method)(url.format(**ids), body, format="json")
        if method == "post"
        else client.get(url.format(**ids))
    )
    assert response.status_code == expected[role], (name, role, response.content[:300])
    if response.status_code >= 400:
        assert "message" in response.json()


def test_matrix_covers_every_api_route():
    """A new API route without a row here fails this test."""
    from django.urls import get_resolver

    from annotations.api import urls as api_urls

    names = {p.name for p in api_urls.urlpatterns} | {"moderations"}
    assert names == {e[0] for e in ENDPOINTS}
    assert "moderations" in get_resolver().reverse_dict
