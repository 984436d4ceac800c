"""A worker SIGKILLed mid-round: the served model is untouched before, during and after the sweep.

Extends tests/rounds/test_worker_kill.py (which checks the round ends failed with no partial
predictions): here a previous model version is active, and /v1/moderations keeps answering
with that version while the round trains, after the kill, and after the stale sweep.
"""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from annotations.models import ModelVersion, Prediction, TrainingRound
from annotations.services.rounds import training_round_start
from annotations.tasks.jobs import jobs_sweep_stale
from umbra_testkit import LONG_ROUND_CONFIG as LONG_CONFIG
from umbra_testkit import start_round_worker as start_worker
from umbra_testkit import wait_for_round

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _moderate(client: APIClient) -> dict:
    response = client.post("/v1/moderations", {"input": "how to make a bomb", "project": "safety"}, format="json")
    assert response.status_code == 200, response.content[:300]
    return response.json()


def test_killed_round_never_replaces_the_served_model(
    tmp_path, tiny_backbone, engine_cache, tiny_model_dir, settings, project, users, round_items
):
    now_round = TrainingRound.objects.create(
        project=project, algorithm="multimatch", status=TrainingRound.Status.SUCCEEDED
    )
    served = ModelVersion.objects.create(
        project=project, training_round=now_round, path=tiny_model_dir, threshold=0.5, is_active=True
    )
    client = APIClient()
    client.force_authenticate(users["annotator"])
    before = _moderate(client)
    assert before["model"] == served.name

    worker = start_worker(tmp_path, tiny_backbone, engine_cache, pool="solo")
    try:
        rnd = training_round_start(project=project, user=users["admin"], algorithm="multimatch", config=LONG_CONFIG)
        wait_for_round(rnd.pk, check=lambda r: r.status == "running" and r.progress.get("phase") == "train")
        assert _moderate(client)["model"] == served.name  # training does not touch serving
        worker.kill()
    finally:
        worker.stop()

    after_kill = _moderate(client)
    assert {**after_kill, "id": ""} == {**before, "id": ""}  # same model, same scores
    settings.UMBRA_JOB_HEARTBEAT_TIMEOUT = 2
    time.sleep(2.5)
    assert jobs_sweep_stale() == 1
    rnd.refresh_from_db()
    assert rnd.status == "failed" and "Worker lost" in rnd.error
    assert not Prediction.objects.filter(training_round=rnd).exists()
    assert list(ModelVersion.objects.filter(project=project, is_active=True)) == [served]
    assert _moderate(client)["model"] == served.name
