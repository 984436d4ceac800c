"""Augmentation / refinement / adversarial pages: role matrix, forms, htmx fragments, escaping."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotations.models import AugmentedVariant, BackgroundJob, Item, TrainingRound

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script>'


@pytest.fixture
def objects(project, users, aug_items):
    job = BackgroundJob.objects.create(
        project=project,
        kind="augment",
        created_by=users["admin"],
        status="failed",
        params={"method": "word_swap", "per_item": 1, "items": "seed"},
        result={"created": 1, "kept": 1, "dropped": 0, "drop_reasons": {}},
    )
    item = Item.objects.filter(project=project).first()
    AugmentedVariant.objects.create(item=item, job=job, method="word_swap", text=XSS)
    rnd = BackgroundJob.objects.create(
        project=project,
        kind="refine",
        status="succeeded",
        number=1,
        params={"source": "imported", "iterations": 2, "variant": "robust"},
        result={
            "f1": 0.5,
            "accuracy": 0.75,
            "n": 8,
            "source": "imported",
            "variant": "robust",
            "iterations": [
                {
                    "iteration": 0,
                    "changed": 0,
                    "labels_harmful": 3,
                    "test": {"accuracy": 0.5, "f1": 0.4},
                    "theta": None,
                },
                {
                    "iteration": 1,
                    "changed": 4,
                    "labels_harmful": 5,
                    "test": {"accuracy": 0.75, "f1": 0.5},
                    "theta": {
                        "theta_p": 0.8,
                        "theta_n": 0.1,
                        "interval_p": [0.5, 0.9],
                        "interval_n": [0.0, 0.3],
                        "n_p": 5,
                        "n_n": 6,
                    },
                },
            ],
        },
    )
    return {"job": job, "round": rnd}


GETS = [
    ("augment_page", {}),
    ("augment_job_detail", {"job_id": "job"}),
    ("refine_page", {}),
    ("refine_detail", {"job_id": "round"}),
]
POSTS = [
    ("augment_start", {}),
    ("adversarial_start", {}),
    ("judge_labels_start", {}),
    ("refine_start", {}),
    ("augment_job_resume", {"job_id": "job"}),
    ("augment_job_cancel", {"job_id": "job"}),
    ("adversarial_evaluate", {"job_id": "job"}),
    ("refine_cancel", {"job_id": "round"}),
]


def _url(name, kw, project, objects):
    args = {k: objects[v].pk for k, v in kw.items()}
    return reverse(f"annotations:{name}", kwargs={"slug": project.slug, **args})


@pytest.mark.parametrize(
    "role,get_status,post_status",
    [
        (None, 302, 302),
        ("outsider", 404, 404),
        ("annotator", 403, 403),
        ("reviewer", 200, 403),
    ],
)
def test_role_matrix(client_for, project, objects, role, get_status, post_status):
    client = client_for(role)
    for name, kw in GETS:
        response = client.get(_url(name, kw, project, objects))
        assert response.status_code == get_status, (name, role)
        if role is None:
            assert "/login" in response["Location"] or "login" in response["Location"]
    for name, kw in POSTS:
        assert client.post(_url(name, kw, project, objects), {}).status_code == post_status, (name, role)


def test_admin_sees_forms_and_escaped_variants(client_for, project, objects):
    client = client_for("admin")
    page = client.get(_url("augment_page", {}, project, objects)).content.decode()
    assert 'action="/p/safety/augment/start/"' in page and "api_key_env" in page
    detail = client.get(_url("augment_job_detail", {"job_id": "job"}, project, objects)).content.decode()
    assert XSS not in detail and "&lt;script&gt;" in detail
    refine = client.get(_url("refine_detail", {"job_id": "round"}, project, objects)).content.decode()
    assert "0.800 [0.500, 0.900]" in refine and "start (noisy)" in refine


def test_admin_starts_a_job_from_the_form_and_polls_its_progress(
    client_for, project, objects, django_capture_on_commit_callbacks
):
    client = client_for("admin")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            _url("augment_start", {}, project, objects),
            {"method": "word_swap", "per_item": 2, "items": "seed", "provider_kind": "local"},
        )
    assert response.status_code == 302 and len(callbacks) == 1
    job = BackgroundJob.objects.filter(kind="augment").order_by("-id").first()
    assert job.params["method"] == "word_swap" and job.status == "queued"
    fragment = client.get(response["Location"], headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'id="job-progress"' in fragment.content.decode()
    assert "<html" not in fragment.content.decode() and 'hx-trigger="every 1s"' in fragment.content.decode()
    BackgroundJob.objects.filter(pk=job.pk).update(status="succeeded", result={"created": 0})
    done = client.get(response["Location"], headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling


def test_form_errors_come_back_with_422(client_for, project, objects):
    client = client_for("admin")
    response = client.post(
        _url("augment_start", {}, project, objects),
        {"method": "llm_rewrite", "per_item": 2, "items": "seed", "provider_kind": "openai", "model": "m"},
    )
    assert response.status_code == 422 and "base_url" in response.content.decode()
    response = client.post(
        _url("adversarial_start", {}, project, objects),
        {"direction": "evade", "iterations": 1, "per_item": 2, "provider_kind": "local"},
    )
    # No active model is a state the form cannot fix: 409 with the reason in the form.
    assert response.status_code == 409 and "needs an active model" in response.content.decode()
    response = client.post(
        _url("refine_start", {}, project, objects), {"source": "llm_judge", "iterations": 3, "variant": "robust"}
    )
    assert response.status_code == 422 and "No llm_judge weak labels" in response.content.decode()


def test_admin_resumes_a_failed_job(client_for, project, objects, django_capture_on_commit_callbacks):
    client = client_for("admin")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(_url("augment_job_resume", {"job_id": "job"}, project, objects))
    assert response.status_code == 302 and len(callbacks) == 1
    objects["job"].refresh_from_db()
    assert objects["job"].status == "queued"


def test_pages_query_count(client_for, project, objects, django_assert_max_num_queries):
    client = client_for("reviewer")
    with django_assert_max_num_queries(12):
        page = client.get(_url("augment_page", {}, project, objects))
    assert page.status_code == 200
    with django_assert_max_num_queries(12):
        detail = client.get(_url("augment_job_detail", {"job_id": "job"}, project, objects))
    assert detail.status_code == 200


def test_loss_flagged_variants_are_shown_filtered_and_linked_from_the_round(client_for, project, users, aug_items):
    item = Item.objects.filter(project=project).first()
    rnd = TrainingRound.objects.create(
        project=project,
        algorithm="fixmatch",
        status="succeeded",
        snapshot={"variant_ids": [], "variant_loss": {"checked": 2, "flagged": 1}},
    )
    flagged = AugmentedVariant.objects.create(
        item=item,
        method="m",
        variant_index=0,
        text="flagged " + XSS,
        review_priority=5.0,
        curation={
            "loss_flag": "high_loss: above the q0.90 loss in 2/2 epochs " + XSS,
            "loss": {"round": rnd.pk, "as": "strong view", "epochs": [1.0, 2.0], "mean": 1.5, "flagged": True},
        },
    )
    AugmentedVariant.objects.create(
        item=item,
        method="m",
        variant_index=1,
        text="fine one",
        curation={"loss": {"round": rnd.pk, "as": "labeled copy", "epochs": [0.2], "mean": 0.2, "flagged": False}},
    )
    client = client_for("reviewer")
    url = reverse("annotations:variant_list", kwargs={"slug": project.slug})
    page = client.get(url).content.decode()
    assert f"Training loss stayed high in round #{rnd.pk}" in page and "mean 0.200 as a labeled copy" in page
    assert XSS not in page and "&lt;script&gt;" in page
    only = client.get(url, {"status": "", "loss_flagged": "on"}).content.decode()
    assert "1 variant." in only and f'id="variant-{flagged.pk}"' in only and "fine one" not in only
    detail = client.get(reverse("annotations:round_detail", kwargs={"slug": project.slug, "round_id": rnd.pk}))
    body = detail.content.decode()
    assert "Loss check of augmentations: 2 drawn in training, 1 flagged" in body and "loss_flagged=on" in body
    # the API filters the same way and shows the curation record
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(users["reviewer"])
    rows = api.get(f"/api/projects/{project.slug}/variants/", {"loss_flagged": "true"}).json()["results"]
    assert [r["id"] for r in rows] == [flagged.pk] and rows[0]["curation"]["loss"]["mean"] == 1.5


def test_refine_page_charts_theta_and_agreement_per_iteration(client_for, project, objects):
    import re

    response = client_for("reviewer").get(_url("refine_detail", {"job_id": "round"}, project, objects))
    assert response.status_code == 200
    charts = response.content.decode().split('id="refine-charts"', 1)[1].split("</div>", 1)[0]
    theta = charts.split('data-chart="refine-theta"', 1)[1].split("</svg>", 1)[0]
    agreement = charts.split('data-chart="refine-agreement"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'data-series="([^"]+)" data-points="(\d+)"', theta) == [
        ("θ̂ harmful set", "1"),
        ("θ̂ unharmful set", "1"),
    ]  # iteration 0 has no θ̂
    assert re.findall(r'data-series="([^"]+)" data-points="(\d+)"', agreement) == [("accuracy", "2"), ("F1", "2")]


def test_job_settings_read_as_words_not_python_reprs(client_for, project, objects):
    job = objects["job"]
    job.params = {**job.params, "provider": {"kind": "openai", "api_key_env": "VLLM_KEY"}, "method": "llm_rewrite"}
    job.save(update_fields=["params"])
    response = client_for("reviewer").get(_url("augment_job_detail", {"job_id": "job"}, project, objects))
    assert response.status_code == 200
    html = response.content.decode()
    assert "{&#x27;kind&#x27;" not in html and "{'kind'" not in html
    assert "<dd>kind: openai; API key environment variable: VLLM_KEY</dd>" in html
    assert "<dd>LLM rewrite</dd>" in html


def test_provider_only_fields_are_marked_for_the_openai_provider(client_for, project, objects):
    html = client_for("admin").get(_url("augment_page", {}, project, objects)).content.decode()
    assert re.search(r'name="api_key_env"[^>]*data-show-if="provider_kind=openai"', html)
    assert re.search(r'name="base_url"[^>]*data-show-if="provider_kind=openai"', html)
    assert "API key environment variable" in html
    assert '<option value="llm_rewrite" selected>LLM rewrite</option>' in html
