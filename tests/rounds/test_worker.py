"""End to end with a real Celery worker process, the real Redis broker and the test PostgreSQL DB."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from rounds.conftest import LONG_CONFIG, TINY_CONFIG, wait_for_round

from annotations.models import ModelVersion, Prediction, TrainingRound
from annotations.tasks.rounds import training_round_run

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _start_from_page(client, project, config) -> TrainingRound:
    response = client.post(
        reverse("annotations:round_start", args=[project.slug]),
        {"algorithm": "multimatch", "config": json.dumps(config), "seed": "0"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return TrainingRound.objects.get(project=project, status__in=TrainingRound.ACTIVE_STATUSES)


def test_round_started_from_the_page_runs_on_the_worker(celery_worker, project, users, client_for, round_items):
    admin = client_for("admin")
    training_round = _start_from_page(admin, project, TINY_CONFIG)

    done = wait_for_round(training_round.pk)

    assert done.status == "succeeded", (done.error, celery_worker.output()[-3000:])
    assert done.worker.startswith("rounds-test-")
    pool_ids = set(Prediction.objects.filter(training_round=done).values_list("item_id", flat=True))
    assert pool_ids == round_items["pool_ids"]
    assert ModelVersion.objects.get(training_round=done).is_active
    page = client_for("reviewer").get(reverse("annotations:round_list", args=[project.slug]))
    html = page.content.decode()
    assert page.status_code == 200 and 'status-succeeded">succeeded<' in html and f"#{done.number}</a>" in html
    assert "<svg" in html and "chart-dot" in html  # the learning curve has a point now
    poll = admin.get(reverse("annotations:round_list", args=[project.slug]), HTTP_HX_REQUEST="true")
    assert poll.status_code == 286  # nothing active: htmx stops polling

    # The same message delivered again: the worker finds the round claimed and does nothing.
    again = training_round_run.delay(done.pk)
    assert again.get(timeout=60) == "skipped"
    after = TrainingRound.objects.get(pk=done.pk)
    assert (after.status, after.started_at, after.finished_at) == (done.status, done.started_at, done.finished_at)
    assert Prediction.objects.filter(training_round=done).count() == len(round_items["pool_ids"])


def test_cancel_stops_a_running_round_and_leaves_no_predictions(celery_worker, project, users, client_for, round_items):
    admin = client_for("admin")
    training_round = _start_from_page(admin, project, LONG_CONFIG)
    wait_for_round(training_round.pk, check=lambda r: r.status == "running" and r.progress.get("phase") == "train")

    live = admin.get(reverse("annotations:round_list", args=[project.slug]), HTTP_HX_REQUEST="true")
    assert live.status_code == 200 and "<progress" in live.content.decode()  # still polling
    response = admin.post(reverse("annotations:round_cancel", args=[project.slug, training_round.pk]))
    assert response.status_code == 302

    done = wait_for_round(training_round.pk, timeout=60)
    assert done.status == "cancelled" and done.finished_at
    assert not Prediction.objects.filter(training_round=done).exists()
    assert not ModelVersion.objects.filter(training_round=done).exists()


def test_start_round_command_waits_with_a_progress_bar(celery_worker, project, users, round_items, capsys):
    call_command(
        "start_round",
        project=project.slug,
        algorithm="fixmatch",
        config=json.dumps(TINY_CONFIG),
        user=users["admin"].username,
        wait=True,
        poll=0.2,
    )

    out = capsys.readouterr().out
    training_round = TrainingRound.objects.get(project=project)
    assert training_round.status == "succeeded"
    assert "Round #1 queued (fixmatch" in out  # numbered within the project
    assert "[" in out and "%" in out and "succeeded" in out
