"""Background jobs: lists by kind (pages and the API), one job, and what a queued job is waiting for."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from annotations.models import BackgroundJob, Job, JobStatus, Project, TrainingRound

AHEAD_SHOWN = 20
# The jobs the augmentation page lists and acts on (refinement jobs have their own page).
AUGMENT_PAGE_KINDS = (BackgroundJob.Kind.AUGMENT, BackgroundJob.Kind.ADVERSARIAL, BackgroundJob.Kind.JUDGE)


def jobs_for(
    *, project: Project, kinds: Iterable[str] | None = None, limit: int | None = None
) -> QuerySet[BackgroundJob]:
    """The project's background jobs of ``kinds`` (all kinds if None), newest first."""
    qs = BackgroundJob.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    return qs[:limit] if limit is not None else qs


def job_get(*, project: Project, job_id: int, kinds: Iterable[str] | None = None) -> BackgroundJob | None:
    """One job of ``project`` (of one of ``kinds`` if given), or None."""
    qs = BackgroundJob.objects.filter(project=project, pk=job_id).select_related("created_by", "project")
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    return qs.first()


def _same_queue(job: Job) -> list:
    """Querysets of the active jobs that share ``job``'s Celery queue (its worker serves them in order)."""
    from annotations.services.jobs import RUNNERS, job_queue, runner_get

    queue = job_queue(job=job)
    runner_get(name="round")  # loads the registry
    kinds = [name for name, cls in RUNNERS.items() if cls.model is BackgroundJob and cls.queue == queue]
    querysets = []
    if RUNNERS["round"].queue == queue:
        querysets.append(TrainingRound.objects.filter(status__in=Job.ACTIVE_STATUSES))
    if kinds:
        querysets.append(BackgroundJob.objects.filter(kind__in=kinds, status__in=Job.ACTIVE_STATUSES))
    return querysets


def jobs_ahead(*, job: Job) -> list[Job]:
    """Jobs a queued ``job`` waits behind on its queue: running ones first, then older queued ones."""
    ahead: list[Job] = []
    for qs in _same_queue(job):
        rows = qs.exclude(pk=job.pk) if type(job) is qs.model else qs
        running = rows.filter(status=JobStatus.RUNNING)
        queued = rows.filter(status=JobStatus.QUEUED, created_at__lt=job.created_at)
        ahead += list(running.select_related("project")[:AHEAD_SHOWN])
        ahead += list(queued.select_related("project").order_by("created_at")[:AHEAD_SHOWN])
    ahead.sort(key=lambda j: (j.status != JobStatus.RUNNING, j.created_at))
    return ahead


def wait_reason(*, job: Job) -> str:
    """Why a queued job has not started: "waiting behind Augmentation job #2 (running) and 1 more"."""
    ahead = jobs_ahead(job=job)
    if not ahead:
        return "waiting for a worker"
    first = ahead[0]
    name = first.label if first.project_id == job.project_id else "a job of another project"
    more = f" and {len(ahead) - 1} more" if len(ahead) > 1 else ""
    return f"waiting behind {name} ({first.status}){more}"


def with_wait_reasons(jobs: Iterable[Job]) -> list[Job]:
    """The jobs, each queued one with ``waiting_behind`` set (for the progress partials)."""
    jobs = list(jobs)
    for job in jobs:
        if job.status == JobStatus.QUEUED:
            job.waiting_behind = wait_reason(job=job)
    return jobs
