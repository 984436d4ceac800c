"""Background jobs other than training rounds: a row per job, claimed atomically by the task."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import BackgroundJob, Project


def job_claim(*, job_id: int) -> BackgroundJob | None:
    """Flip a queued job to running in one conditional UPDATE; None if someone else has it."""
    claimed = BackgroundJob.objects.filter(pk=job_id, status=BackgroundJob.Status.QUEUED).update(
        status=BackgroundJob.Status.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    if not claimed:
        return None
    return BackgroundJob.objects.select_related("project").get(pk=job_id)


def job_finish(*, job: BackgroundJob, result: dict) -> None:
    BackgroundJob.objects.filter(pk=job.pk).update(
        status=BackgroundJob.Status.SUCCEEDED, result=result, finished_at=timezone.now()
    )


def job_fail(*, job: BackgroundJob, error: str, result: dict | None = None) -> None:
    BackgroundJob.objects.filter(pk=job.pk).update(
        status=BackgroundJob.Status.FAILED, error=error[:10000], result=result or {}, finished_at=timezone.now()
    )


def upload_store(*, uploaded, prefix: str) -> Path:
    """Copy an uploaded file to the uploads folder under a fresh name; returns the path."""
    folder = Path(settings.MEDIA_ROOT) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(uploaded.name).suffix.lower()
    path = folder / f"{prefix}-{uuid.uuid4().hex}{suffix}"
    with path.open("wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    return path


@transaction.atomic
def import_job_start(*, project: Project, user, uploaded, split: str, bench_name: str, skip_invalid: bool) -> BackgroundJob:
    """Store the upload and enqueue an import job after commit."""
    from annotations.tasks.imports import import_job_run

    try:
        path = upload_store(uploaded=uploaded, prefix=f"import-{project.slug}")
    except OSError as exc:
        raise ApplicationError(f"Could not store the upload: {exc}") from exc
    job = BackgroundJob.objects.create(
        project=project, kind=BackgroundJob.Kind.IMPORT, created_by=user,
        params={"path": str(path), "name": uploaded.name, "split": split, "bench_name": bench_name,
                "skip_invalid": skip_invalid},
    )
    transaction.on_commit(lambda: import_job_run.delay(job.pk))
    return job


def import_job_execute(*, job_id: int) -> None:
    """Run a claimed import job; the import itself is one transaction."""
    from annotations.services.imports import ImportFailed, format_from_name, items_import

    job = job_claim(job_id=job_id)
    if job is None:
        return
    p = job.params
    try:
        with open(p["path"], "rb") as fh:
            report = items_import(project=job.project, stream=fh, fmt=format_from_name(p["name"]), split=p["split"],
                                  bench_name=p["bench_name"], skip_invalid=p["skip_invalid"])
    except ImportFailed as exc:
        job_fail(job=job, error=exc.message, result={"errors": [str(e) for e in exc.errors[:200]]})
        return
    except Exception as exc:
        job_fail(job=job, error=f"Import failed and was rolled back: {exc}")
        raise
    finally:
        Path(p["path"]).unlink(missing_ok=True)
    job_finish(job=job, result={"summary": report.summary(), "created": report.created, "duplicates": report.duplicates,
                                "labeled": report.labeled, "errors": [str(e) for e in report.errors[:200]]})
