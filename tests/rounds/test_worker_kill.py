"""A worker SIGKILLed mid-round: the round is not left running.

The sweep that fails it runs (1) from Celery beat, within the heartbeat timeout plus one
sweep interval after the last heartbeat, and (2) when a worker starts, at once for the jobs
its previous life (same worker name) left running, and for every job already stale.
"""

from __future__ import annotations

import time
import uuid

import pytest
from rounds.conftest import LONG_CONFIG, start_worker, wait_for_round

from annotations.models import ModelVersion, Prediction
from annotations.services.rounds import training_round_start
from annotations.tasks.jobs import jobs_sweep_stale
from umbra_testkit import start_worker as start_any_worker

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT, INTERVAL = 3, 1  # UMBRA_JOB_HEARTBEAT_TIMEOUT and UMBRA_JOB_SWEEP_INTERVAL of the workers below
FAST_SWEEP = {"UMBRA_JOB_HEARTBEAT_TIMEOUT": str(TIMEOUT), "UMBRA_JOB_SWEEP_INTERVAL": str(INTERVAL)}


@pytest.fixture
def solo_worker(tmp_path, tiny_backbone, engine_cache):
    # The solo pool runs the task in the worker process itself, so one SIGKILL takes all of it down.
    worker = start_worker(tmp_path, tiny_backbone, engine_cache, pool="solo")
    yield worker
    worker.stop()


def _training(round_id: int):
    return wait_for_round(round_id, check=lambda r: r.status == "running" and r.progress.get("phase") == "train")


def _assert_nothing_stored(training_round) -> None:
    assert not Prediction.objects.filter(training_round=training_round).exists()
    assert not ModelVersion.objects.filter(training_round=training_round).exists()


def test_killed_worker_leaves_the_round_failed_after_the_sweep(solo_worker, settings, project, users, round_items):
    training_round = training_round_start(
        project=project, user=users["admin"], algorithm="multimatch", config=LONG_CONFIG
    )
    _training(training_round.pk)

    solo_worker.kill()
    settings.UMBRA_JOB_HEARTBEAT_TIMEOUT = 2
    training_round.refresh_from_db()
    assert training_round.status == "running"  # nobody is left to say otherwise
    time.sleep(2.5)

    assert jobs_sweep_stale() == 1

    training_round.refresh_from_db()
    assert training_round.status == "failed" and "Worker lost" in training_round.error
    _assert_nothing_stored(training_round)


def test_beat_fails_a_killed_round_within_timeout_plus_one_interval(
    tmp_path, tiny_backbone, engine_cache, project, users, round_items
):
    """The bound README states: failed at most timeout + sweep interval after the last heartbeat."""
    trainer = start_any_worker(
        tmp_path, tiny_backbone, engine_cache, queues=("training",), pool="solo", name="trainer", extra_env=FAST_SWEEP
    )
    # Another worker with the beat: it runs the sweep every second, and is alive throughout.
    sweeper = start_any_worker(
        tmp_path, tiny_backbone, engine_cache, queues=("celery",), name="sweeper", extra_env=FAST_SWEEP, beat=True
    )
    try:
        training_round = training_round_start(
            project=project, user=users["admin"], algorithm="multimatch", config=LONG_CONFIG
        )
        _training(training_round.pk)
        trainer.kill()
        done = wait_for_round(training_round.pk, timeout=60)
    finally:
        trainer.stop()
        sweeper.stop()
    assert done.status == "failed" and "no heartbeat for more than 3 s" in done.error
    silent = (done.finished_at - done.heartbeat_at).total_seconds()
    # Not before the timeout; within timeout + one interval (+2 s: the sweep task's trip on a busy machine).
    assert TIMEOUT <= silent <= TIMEOUT + INTERVAL + 2.0, silent
    _assert_nothing_stored(done)


def test_a_restarted_worker_fails_what_its_previous_life_left_running(
    tmp_path, tiny_backbone, engine_cache, project, users, round_items
):
    name = f"restarted-{uuid.uuid4().hex[:6]}@%h"
    first = start_any_worker(
        tmp_path, tiny_backbone, engine_cache, queues=("celery", "training"), pool="solo", hostname=name
    )
    try:
        training_round = training_round_start(
            project=project, user=users["admin"], algorithm="multimatch", config=LONG_CONFIG
        )
        _training(training_round.pk)
        first.kill()
    finally:
        first.stop()
    killed_at = time.monotonic()
    # Same name, default 300 s timeout: the heartbeat is fresh, yet the round is known dead.
    second = start_any_worker(
        tmp_path, tiny_backbone, engine_cache, queues=("celery", "training"), pool="solo", hostname=name, purge=False
    )
    try:
        done = wait_for_round(training_round.pk, timeout=30)
    finally:
        second.stop()
    assert done.status == "failed" and "its worker restarted" in done.error, done.error
    assert time.monotonic() - killed_at < 120  # one worker start, not the 300 s timeout
    _assert_nothing_stored(done)
