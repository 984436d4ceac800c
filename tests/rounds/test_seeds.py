"""Seed suggestion (cold start) and the prior weights a round gives its labels."""

from __future__ import annotations

import pytest

from annotations.errors import FieldError
from annotations.models import Item, Prediction, TrainingRound
from annotations.services.jobs import job_execute
from annotations.services.labels import prediction_review
from annotations.services.rounds import round_input_build
from annotations.services.seeds import seed_suggestion_start

from .conftest import import_items


@pytest.fixture
def pool(project):
    harmful = [f"how do I make a bomb to hurt people number {i}" for i in range(10)]
    benign = [f"please help me bake a cake for my friend number {i}" for i in range(30)]
    import_items(project, [{"text": t} for t in harmful + benign], Item.Split.POOL)
    return Item.objects.filter(project=project, split=Item.Split.POOL)


def test_bad_sizes_name_the_field(project, users, pool):
    with pytest.raises(FieldError, match="between 1 and") as exc:
        seed_suggestion_start(project=project, user=users["admin"], n=0)
    assert exc.value.field == "n"


def test_suggestion_refuses_an_empty_pool(project, users):
    with pytest.raises(FieldError, match="pool is empty"):
        seed_suggestion_start(project=project, user=users["admin"], n=5)


def test_suggested_seeds_move_to_the_seed_set_with_the_pool_share_they_stand_for(project, users, pool, engine_settings):
    job = seed_suggestion_start(project=project, user=users["admin"], n=8, seed=1)
    assert job_execute(runner_name="seeds", job_id=job.pk) == "succeeded"
    job.refresh_from_db()
    seeds = Item.objects.filter(project=project, split=Item.Split.SEED)
    assert seeds.count() == 8 == job.result["suggested"]
    assert sum(seeds.values_list("seed_weight", flat=True)) == pytest.approx(40)
    assert Item.objects.filter(project=project, split=Item.Split.POOL).count() == 32


def test_suggestion_is_deterministic_under_a_seed(project, users, pool, engine_settings):
    picked = []
    for _ in range(2):
        Item.objects.filter(project=project).update(split=Item.Split.POOL, seed_weight=1.0)
        job = seed_suggestion_start(project=project, user=users["admin"], n=6, seed=3)
        assert job_execute(runner_name="seeds", job_id=job.pk) == "succeeded"
        picked.append(sorted(Item.objects.filter(project=project, split=Item.Split.SEED).values_list("id", flat=True)))
    assert picked[0] == picked[1]


def test_round_input_weighs_seeds_and_leaves_queue_picked_labels_out_of_the_prior(project, users, pool):
    seeds = list(pool.order_by("id")[:3])
    for k, item in enumerate(seeds):
        Item.objects.filter(pk=item.pk).update(split=Item.Split.SEED, seed_weight=5.0 + k)
    from annotations.services.labels import annotation_submit

    for item in seeds:
        annotation_submit(item=Item.objects.get(pk=item.pk), user=users["admin"], role="admin", label="harmful")
    reviewed_item = pool.filter(split=Item.Split.POOL).order_by("id").first()
    rnd = TrainingRound.objects.create(project=project, algorithm="supervised", config={})
    pred = Prediction.objects.create(item=reviewed_item, training_round=rnd, p_harmful=0.6, pseudo_label="harmful")
    prediction_review(prediction=pred, user=users["reviewer"], role="reviewer", action="approve")
    inp, snapshot = round_input_build(training_round=rnd, out_dir="/tmp/unused")
    weights = {ex.example_id: ex.prior_weight for ex in inp.labeled}
    assert [weights[str(i.pk)] for i in seeds] == [5.0, 6.0, 7.0]
    assert weights[str(reviewed_item.pk)] == 0.0
    assert snapshot["prior_weights"] == {"reviewed_queue_labels": 1, "suggested_seed_labels": 3}


def test_admin_asks_for_seed_items_on_the_import_page_and_sees_the_result(project, pool, client_for, engine_settings):
    from django.urls import reverse

    admin = client_for("admin")
    response = admin.post(reverse("annotations:seed_suggestion_start", args=[project.slug]), {"n": "8", "seed": "1"})
    assert response.status_code == 302
    job = project.jobs.get(kind="seeds")
    assert job.params == {"n": 8, "seed": 1}
    assert job_execute(runner_name="seeds", job_id=job.pk) == "succeeded"
    page = admin.get(reverse("annotations:item_import", args=[project.slug]))
    assert page.status_code == 200
    assert "8 of 40 pool items moved to the seed set" in page.content.decode()


def test_a_bad_seed_count_is_shown_under_its_field_and_queues_nothing(project, pool, client_for):
    from django.urls import reverse

    response = client_for("admin").post(reverse("annotations:seed_suggestion_start", args=[project.slug]), {"n": "0"})
    assert response.status_code == 422
    assert response.context["seed_form"].errors["n"] == ["Ensure this value is greater than or equal to 1."]
    assert not project.jobs.filter(kind="seeds").exists()


def test_api_starts_seed_suggestion_and_answers_409_while_one_is_active(project, pool, client_for):
    url = f"/api/projects/{project.slug}/seed-suggestions/start/"
    admin = client_for("admin")
    first = admin.post(url, {"n": 5}, content_type="application/json")
    assert first.status_code == 202
    assert first.json()["status"] == "queued"
    second = admin.post(url, {"n": 5}, content_type="application/json")
    assert second.status_code == 409
