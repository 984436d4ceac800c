"""The one job system, in-process: routing, numbering, cancel, sweep, progress, live pages (issues 14 and 15)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from annotations.errors import Conflict
from annotations.models import BackgroundJob, ModelVersion, TrainingRound
from annotations.services.augmentation import augmentation_job_execute, augmentation_job_start
from annotations.services.imports import import_job_execute
from annotations.services.jobs import RUNNERS, job_cancel, jobs_sweep_stale, runner_get, runner_task_names
from annotations.services.refinement import uu_refine_start, weak_labels_import
from annotations.services.rounds import model_version_create

pytestmark = pytest.mark.django_db

CHEAP = {"method": "word_dropout", "curation": {"similarity_low": None, "similarity_high": None}}


def _augment(project, users, **kw):
    return augmentation_job_start(project=project, user=users["admin"], **{**CHEAP, **kw})


def test_every_runner_has_a_task_routed_to_its_queue():
    names = runner_task_names()
    assert set(names.values()) == {"round", "refine", "augment", "adversarial", "judge", "import", "export", "seeds"}
    for task, name in names.items():
        route = django_settings.CELERY_TASK_ROUTES.get(task, {}).get("queue", "celery")
        assert route == RUNNERS[name].queue, task
    from moderation_app.celery import app

    app.loader.import_default_modules()
    assert set(names) <= set(app.tasks)


def test_jobs_rounds_and_models_are_numbered_per_project(project, other_project, users, aug_items, make_user):
    """Issue 14.12: "Import job 2" was a project's first import, "demo-v3" its first model."""
    from annotations.models import Role
    from annotations.services.projects import membership_set

    membership_set(project=other_project, user=users["admin"], role=Role.ADMIN)
    first = _augment(project, users, items="seed")
    second = _augment(project, users, items="seed")
    BackgroundJob.objects.create(project=other_project, kind="augment", number=1)
    mine = BackgroundJob.objects.create(project=project, kind="export")  # a row written outside the services
    assert (first.number, second.number) == (1, 2) and first.label == "Augmentation job #1"
    assert mine.label == f"Export job #{mine.pk}"  # number 0: falls back to the id, never a clash
    evaluated = {"test": {"n": 4, "f1": 0.5}}  # an evaluated model with enough labels goes live (issue 14.11)
    rounds = [
        TrainingRound.objects.create(
            project=p,
            algorithm="fixmatch",
            status="succeeded",
            number=1,
            snapshot={"label_counts": {"harmful": 3, "unharmful": 3}},
        )
        for p in (other_project, project)
    ]
    version = model_version_create(training_round=rounds[1], path="/m", threshold=0.5, metrics=evaluated)
    assert version.name == "safety-v1" and version.is_active
    again = model_version_create(
        training_round=TrainingRound.objects.create(
            project=project, algorithm="fixmatch", status="succeeded", number=2
        ),
        path="/m2",
        threshold=0.5,
        metrics={},
    )
    assert again.name == "safety-v2" and not again.is_active
    assert ModelVersion.objects.filter(project=other_project).count() == 0


def test_a_refinement_is_its_own_kind_of_job_listed_apart_from_rounds(client_for, project, users, aug_items):
    """Issue 14.15: a UU run appeared among training rounds, shared their numbering, had no algorithm."""
    import json

    from annotations.models import Item

    weak_labels_import(
        project=project,
        lines=[json.dumps({"id": i.pk, "label": i.pk % 2}) for i in Item.objects.filter(project=project)],
    )
    TrainingRound.objects.create(
        project=project, algorithm="fixmatch", status="succeeded", number=1, metrics={"test": {"f1": 0.5, "n": 8}}
    )
    job = uu_refine_start(project=project, user=users["admin"], source="imported")
    assert job.kind == "refine" and job.number == 1 and job.label == "Label refinement job #1"
    with pytest.raises(Conflict, match="Label refinement job #1 is queued; one refinement per project"):
        uu_refine_start(project=project, user=users["admin"], source="imported")
    rounds_page = client_for("admin").get(reverse("annotations:round_list", args=[project.slug])).content.decode()
    assert rounds_page.count('class="round-row"') == 1 and "imported" not in rounds_page
    api = client_for("admin").get(reverse("annotations-api:training-rounds-list", args=[project.slug])).json()
    assert [r["number"] for r in api["results"]] == [1]
    refine_page = client_for("admin").get(reverse("annotations:refine_page", args=[project.slug])).content.decode()
    assert "Refinement jobs" in refine_page and ">#1</a>" in refine_page


def test_cancel_of_a_running_job_stops_it_at_its_next_progress_write(project, users, aug_items, settings):
    settings.UMBRA_JOB_PROGRESS_INTERVAL = 0  # a write after every item (1 s apart by default)
    job = _augment(project, users, items="all")
    seen = []

    def generate(texts, prompts):
        if not seen:
            job_cancel(job=BackgroundJob.objects.get(pk=job.pk), user=users["admin"])
        seen.append(len(texts))
        return [([t + " v"], []) for t in texts]

    job.params = {**job.params, "method": "llm_rewrite"}
    BackgroundJob.objects.filter(pk=job.pk).update(params=job.params)
    assert augmentation_job_execute(job_id=job.pk, generate=generate) == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished_at and len(seen) == 1
    assert job.result["created"] == 1  # what was stored before the stop is kept, and counted
    with pytest.raises(Conflict, match="Augmentation job #1 is already cancelled; nothing to cancel"):
        job_cancel(job=job, user=users["admin"])


def test_progress_moves_item_by_item_with_an_eta(project, users, aug_items, settings):
    """Issue 14.6: progress sat at "prepare 0/10" for the whole job, then jumped to done."""
    job = _augment(project, users, items="seed", limit=10)
    job.params = {**job.params, "method": "llm_rewrite"}
    BackgroundJob.objects.filter(pk=job.pk).update(params=job.params)
    seen: list[dict] = []

    def generate(texts, prompts):
        seen.append(dict(BackgroundJob.objects.get(pk=job.pk).progress))
        return [([t + " v"], []) for t in texts]

    settings.UMBRA_JOB_PROGRESS_INTERVAL = 0  # every write lands, so each step is visible
    assert augmentation_job_execute(job_id=job.pk, generate=generate) == "succeeded"
    assert [p.get("done") for p in seen] == list(range(10))  # one item per step
    assert all(p["total"] == 10 for p in seen) and "eta_seconds" in seen[-1]


def test_a_queued_job_says_which_job_it_waits_behind(client_for, project, users, aug_items):
    running = _augment(project, users, items="seed")
    BackgroundJob.objects.filter(pk=running.pk).update(status="running", heartbeat_at=timezone.now())
    queued = _augment(project, users, items="seed")
    url = reverse("annotations:augment_job_detail", args=[project.slug, queued.pk])
    fragment = client_for("reviewer").get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "waiting behind Augmentation job #1 (running)" in fragment
    listing = client_for("reviewer").get(reverse("annotations:augment_page", args=[project.slug])).content.decode()
    assert "waiting behind Augmentation job #1 (running)" in listing


def test_a_finished_job_page_drops_its_cancel_and_resume_buttons(client_for, project, users, aug_items):
    """Issue 14.5: a finished augmentation job kept its Cancel and Resume buttons on the live page."""
    job = _augment(project, users, items="seed")
    url = reverse("annotations:augment_job_detail", args=[project.slug, job.pk])
    client = client_for("admin")
    live = client.get(url, HTTP_HX_REQUEST="true")
    assert live.status_code == 200 and ">Cancel</button>" in live.content.decode()
    assert augmentation_job_execute(job_id=job.pk) == "succeeded"
    done = client.get(url, HTTP_HX_REQUEST="true")  # the last poll replaces the whole fragment
    html = done.content.decode()
    assert done.status_code == 286 and "Cancel</button>" not in html and "Resume</button>" not in html


def test_a_round_watched_live_shows_its_train_log_at_the_end(client_for, project, users):
    """Issue 14.5: the live round page kept "Train log: No log yet." after success."""
    rnd = TrainingRound.objects.create(project=project, algorithm="fixmatch", status="running", number=1)
    url = reverse("annotations:round_detail", args=[project.slug, rnd.pk])
    client = client_for("reviewer")
    assert "No log yet." in client.get(url).content.decode()
    TrainingRound.objects.filter(pk=rnd.pk).update(
        status="succeeded", finished_at=timezone.now(), train_log=[{"step": 1, "loss": 0.6931, "mask_ratio": 0.5}]
    )
    last_poll = client.get(url, HTTP_HX_REQUEST="true")
    html = last_poll.content.decode()
    assert last_poll.status_code == 286 and "0.6931" in html and "No log yet." not in html
    assert html.count('id="round-status"') == 1  # one polled root: nothing is duplicated by the swap


def test_sweep_fails_a_stale_import_and_removes_its_upload(project, users, tmp_path, settings):
    """An import left running by a killed worker used to stay running forever (no heartbeat, no sweep)."""
    upload = Path(settings.MEDIA_ROOT) / "uploads" / "import-safety-x.jsonl"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text('{"text": "a"}\n')
    old = timezone.now() - timedelta(minutes=10)
    job = BackgroundJob.objects.create(
        project=project,
        kind="import",
        status="running",
        number=1,
        started_at=old,
        heartbeat_at=old,
        params={"path": str(upload), "name": "x.jsonl"},
    )
    fresh = BackgroundJob.objects.create(
        project=project, kind="export", status="running", number=1, started_at=old, heartbeat_at=timezone.now()
    )
    settings.UMBRA_JOB_HEARTBEAT_TIMEOUT = 300

    assert jobs_sweep_stale() == 1

    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == "failed" and job.error.startswith("Worker lost: no heartbeat for more than 300 s")
    assert not upload.exists() and fresh.status == "running"
    assert import_job_execute(job_id=job.pk) == "skipped"  # a late redelivery does nothing


def test_sweep_cancels_a_stale_job_whose_cancel_was_requested(project, users):
    old = timezone.now() - timedelta(minutes=10)
    rnd = TrainingRound.objects.create(
        project=project, algorithm="fixmatch", status="running", number=1, heartbeat_at=old, cancel_requested=True
    )
    assert jobs_sweep_stale(timeout_seconds=60) == 1
    rnd.refresh_from_db()
    assert rnd.status == "cancelled" and rnd.error == ""


def test_resume_is_refused_for_kinds_that_cannot_resume(project, users):
    from annotations.services.jobs import job_resume

    job = BackgroundJob.objects.create(project=project, kind="import", status="failed", number=3)
    assert runner_get(name="import").resumable is False
    with pytest.raises(Conflict, match="Import job #3 cannot be resumed; start a new one"):
        job_resume(job=job, user=users["admin"])


def test_a_projects_first_import_is_import_job_1(
    client_for, project, other_project, users, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    BackgroundJob.objects.create(project=other_project, kind="import", number=1)
    BackgroundJob.objects.create(project=other_project, kind="import", number=2)
    client = client_for("admin")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("annotations:item_import", args=[project.slug]),
            {"file": SimpleUploadedFile("a.jsonl", b'{"text": "a"}\n'), "split": "pool"},
            follow=True,
        )
    assert "Import job #1 queued." in response.content.decode()
