"""The round task called directly in-process (no eager mode): claim, run, store, fail, cancel, sweep."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rounds.conftest import TINY_CONFIG

from annotations.models import ModelVersion, Prediction, TrainingRound
from annotations.selectors.rounds import predictions_visible
from annotations.services.jobs import JobProgress, jobs_sweep_stale
from annotations.services.rounds import DbProgressCallback, training_round_cancel, training_round_start
from annotations.tasks.jobs import jobs_sweep_stale as jobs_sweep_stale_task
from annotations.tasks.rounds import training_round_run
from ssl_engine.types import TrainControl, TrainState

pytestmark = [pytest.mark.slow]


def _start(project, user, django_capture_on_commit_callbacks, **kw) -> TrainingRound:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        training_round = training_round_start(
            project=project,
            user=user,
            algorithm=kw.pop("algorithm", "multimatch"),
            config=kw.pop("config", TINY_CONFIG),
            **kw,
        )
    assert len(callbacks) == 1  # enqueue happens only after commit; not run here
    return training_round


@pytest.mark.django_db
def test_task_runs_a_round_and_stores_a_prediction_per_pool_item(
    engine_settings, project, users, round_items, django_capture_on_commit_callbacks
):
    training_round = _start(project, users["admin"], django_capture_on_commit_callbacks)

    assert training_round_run(training_round.pk) == "succeeded"

    training_round.refresh_from_db()
    assert training_round.status == "succeeded" and training_round.error == ""
    assert training_round.started_at and training_round.finished_at and training_round.heartbeat_at
    preds = Prediction.objects.filter(training_round=training_round)
    assert set(preds.values_list("item_id", flat=True)) == round_items["pool_ids"]
    assert predictions_visible(project=project).count() == len(round_items["pool_ids"])
    p = preds.first()
    assert 0 <= p.p_harmful <= 1 and len(p.head_probs) == 3 and p.pseudo_label in ("harmful", "unharmful")
    assert p.review_reason
    # metrics per evaluation set, never trained on
    assert set(training_round.metrics) == {"test", "bench:xs"}
    assert {"f1", "precision", "recall", "auprc"} <= set(training_round.metrics["test"])
    assert training_round.n_labeled == round_items["n_labeled"]
    assert training_round.n_unlabeled == len(round_items["pool_ids"])
    snap = training_round.snapshot
    assert len(snap["labels"]) == round_items["n_labeled"] and len(snap["annotation_ids"]) == round_items["n_labeled"]
    assert snap["eval_sets"] == {"bench:xs": 6, "test": 8}
    labeled_ids = {row[0] for row in snap["labels"]}
    assert not labeled_ids & round_items["pool_ids"]
    assert training_round.train_log and training_round.progress["phase"] == "done"
    # model version registered in HF format and, being the first, made active
    version = ModelVersion.objects.get(training_round=training_round)
    assert version.is_active
    assert Path(version.path, "config.json").is_file() and Path(version.path, "umbra_model.json").is_file()
    assert str(engine_settings.UMBRA_ARTIFACT_DIR / f"round-{training_round.pk}") in version.path

    # a redelivered message finds the round claimed and does nothing
    before = (training_round.started_at, training_round.finished_at)
    assert training_round_run(training_round.pk) == "skipped"
    training_round.refresh_from_db()
    assert (training_round.started_at, training_round.finished_at) == before
    assert Prediction.objects.filter(training_round=training_round).count() == len(round_items["pool_ids"])

    # a second round succeeds but does not replace the active model by itself
    second = _start(project, users["admin"], django_capture_on_commit_callbacks, algorithm="supervised", seed=1)
    assert training_round_run(second.pk) == "succeeded"
    assert ModelVersion.objects.get(training_round=second).is_active is False
    assert ModelVersion.objects.get(is_active=True, project=project).training_round_id == training_round.pk


@pytest.mark.django_db
def test_engine_exception_marks_failed_and_keeps_the_active_model(
    engine_settings, project, users, round_items, django_capture_on_commit_callbacks
):
    good = _start(project, users["admin"], django_capture_on_commit_callbacks)
    assert training_round_run(good.pk) == "succeeded"
    engine_settings.SSL_ENGINE_BACKBONE = "/nonexistent/backbone-dir"
    bad = _start(project, users["admin"], django_capture_on_commit_callbacks)

    assert training_round_run(bad.pk) == "failed"

    bad.refresh_from_db()
    assert bad.status == "failed" and bad.finished_at
    assert "/nonexistent/backbone-dir" in bad.error
    assert not Prediction.objects.filter(training_round=bad).exists()
    assert not ModelVersion.objects.filter(training_round=bad).exists()
    assert ModelVersion.objects.get(project=project, is_active=True).training_round_id == good.pk
    assert not (engine_settings.UMBRA_ARTIFACT_DIR / f"round-{bad.pk}").exists()


@pytest.mark.django_db
def test_unwritable_artifact_dir_marks_failed_with_the_reason(
    engine_settings, project, users, round_items, django_capture_on_commit_callbacks, tmp_path
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the artifact folder should be")
    engine_settings.UMBRA_ARTIFACT_DIR = blocker
    training_round = _start(project, users["admin"], django_capture_on_commit_callbacks)

    assert training_round_run(training_round.pk) == "failed"

    training_round.refresh_from_db()
    assert training_round.status == "failed"
    assert "Cannot write model artifacts" in training_round.error and str(blocker) in training_round.error


@pytest.mark.django_db
def test_failure_while_storing_leaves_no_partial_predictions(
    engine_settings, project, users, round_items, django_capture_on_commit_callbacks
):
    training_round = _start(project, users["admin"], django_capture_on_commit_callbacks)
    # Occupy the round's one model-version slot: registering it fails *after* the COPY.
    ModelVersion.objects.create(project=project, training_round=training_round, path="/elsewhere")

    assert training_round_run(training_round.pk) == "failed"

    training_round.refresh_from_db()
    assert training_round.status == "failed" and "IntegrityError" in training_round.error
    assert Prediction.objects.filter(training_round=training_round).count() == 0
    assert predictions_visible(project=project).count() == 0


@pytest.mark.django_db
def test_cancelled_queued_round_is_never_run(project, users, round_items, django_capture_on_commit_callbacks):
    training_round = _start(project, users["admin"], django_capture_on_commit_callbacks)
    training_round_cancel(training_round=training_round, user=users["admin"])

    assert training_round_run(training_round.pk) == "skipped"
    training_round.refresh_from_db()
    assert training_round.status == "cancelled" and training_round.started_at is None


@pytest.mark.django_db
def test_progress_callback_throttles_writes_and_stops_on_cancel(
    project, users, round_items, django_capture_on_commit_callbacks
):
    training_round = _start(project, users["admin"], django_capture_on_commit_callbacks)
    TrainingRound.objects.filter(pk=training_round.pk).update(status="running", started_at=timezone.now(), claim="c1")
    training_round.refresh_from_db()
    progress = JobProgress(training_round)
    callback, control = DbProgressCallback(progress), TrainControl()

    for step in range(500):
        callback.on_step_end(TrainState(step=step, total_steps=500, loss=0.5, phase="train"), control)

    assert callback.writes == 1 and not control.should_stop
    training_round.refresh_from_db()
    assert training_round.progress["step"] == 0 and training_round.heartbeat_at is not None

    TrainingRound.objects.filter(pk=training_round.pk).update(cancel_requested=True)
    progress._last -= 1.0  # a second has passed
    callback.on_step_end(TrainState(step=501, total_steps=500, phase="train"), control)
    assert callback.writes == 2 and control.should_stop and callback.cancelled and not callback.lost


@pytest.mark.django_db
def test_progress_stops_a_worker_whose_claim_was_taken(project, users, round_items, django_capture_on_commit_callbacks):
    training_round = _start(project, users["admin"], django_capture_on_commit_callbacks)
    TrainingRound.objects.filter(pk=training_round.pk).update(status="running", claim="old")
    training_round.refresh_from_db()
    callback, control = DbProgressCallback(JobProgress(training_round)), TrainControl()
    TrainingRound.objects.filter(pk=training_round.pk).update(claim="new")  # swept and claimed again elsewhere

    callback.on_step_end(TrainState(step=1, total_steps=5, phase="train"), control)

    assert control.should_stop and callback.lost and not callback.cancelled
    training_round.refresh_from_db()
    assert training_round.progress == {"phase": "queued"}  # the old worker wrote nothing


@pytest.mark.django_db
def test_sweep_fails_rounds_with_a_stale_heartbeat_only(settings, project, other_project, users):
    old = timezone.now() - timedelta(seconds=600)
    stale = TrainingRound.objects.create(
        project=project, algorithm="fixmatch", status="running", started_at=old, heartbeat_at=old
    )
    fresh = TrainingRound.objects.create(
        project=other_project, algorithm="fixmatch", status="running", started_at=old, heartbeat_at=timezone.now()
    )
    settings.UMBRA_JOB_HEARTBEAT_TIMEOUT = 300

    assert jobs_sweep_stale_task() == 1

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "failed" and "Worker lost" in stale.error and stale.finished_at
    assert fresh.status == "running"
    assert jobs_sweep_stale(timeout_seconds=0) == 1  # with a zero timeout, the fresh one too


def test_progress_callback_keeps_a_bounded_live_curve():
    """The live loss / mask-ratio chart reads ``progress["curve"]``: at most CURVE_POINTS steps, evenly spaced."""

    class Recorder:
        writes = 0

        def update(self, **progress):
            self.last = progress

    recorder = Recorder()
    callback, control = DbProgressCallback(recorder), TrainControl()
    for step in range(1, 1001):
        callback.on_step_end(
            TrainState(step=step, total_steps=1000, loss=1 / step, mask_ratio=0.5, phase="train"), control
        )
    steps = [e["step"] for e in recorder.last["curve"]]
    assert len(steps) < DbProgressCallback.CURVE_POINTS and steps[-1] >= 990
    assert len({b - a for a, b in zip(steps, steps[1:], strict=False)}) == 1  # one stride throughout
