"""A worker SIGKILLed mid-round: the round is not left running; the stale sweep fails it."""

from __future__ import annotations

import time

import pytest
from rounds.conftest import LONG_CONFIG, start_worker, wait_for_round

from annotations.models import ModelVersion, Prediction
from annotations.services.rounds import training_round_start
from annotations.tasks.rounds import rounds_sweep_stale

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def solo_worker(tmp_path, tiny_backbone, engine_cache):
    # The solo pool runs the task in the worker process itself, so one SIGKILL takes all of it down.
    worker = start_worker(tmp_path, tiny_backbone, engine_cache, pool="solo")
    yield worker
    worker.stop()


def test_killed_worker_leaves_the_round_failed_after_the_sweep(solo_worker, settings, project, users, round_items):
    training_round = training_round_start(project=project, user=users["admin"], algorithm="multimatch",
                                          config=LONG_CONFIG)
    wait_for_round(training_round.pk, check=lambda r: r.status == "running" and r.progress.get("phase") == "train")

    solo_worker.kill()
    settings.UMBRA_ROUND_HEARTBEAT_TIMEOUT = 2
    training_round.refresh_from_db()
    assert training_round.status == "running"  # nobody is left to say otherwise
    time.sleep(2.5)

    assert rounds_sweep_stale() == 1

    training_round.refresh_from_db()
    assert training_round.status == "failed" and "Worker lost" in training_round.error
    assert not Prediction.objects.filter(training_round=training_round).exists()
    assert not ModelVersion.objects.filter(training_round=training_round).exists()
