"""Read side of augmentation, adversarial mining, LLM-judge jobs and UU refinement rounds."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from annotations.models import AugmentedVariant, BackgroundJob, Project, WeakLabel

JOB_KINDS = (BackgroundJob.Kind.AUGMENT, BackgroundJob.Kind.ADVERSARIAL, BackgroundJob.Kind.JUDGE)


def augment_jobs_for(*, project: Project, limit: int = 50) -> QuerySet[BackgroundJob]:
    """Recent augmentation / adversarial / judge jobs of a project, newest first."""
    return (BackgroundJob.objects.filter(project=project, kind__in=JOB_KINDS)
            .select_related("created_by").order_by("-created_at", "-id")[:limit])


def augment_job_get(*, project: Project, job_id: int) -> BackgroundJob:
    job = BackgroundJob.objects.filter(project=project, kind__in=JOB_KINDS, pk=job_id).select_related(
        "created_by", "project").first()
    if job is None:
        raise Http404("No such job in this project.")
    return job


def job_variant_counts(*, job: BackgroundJob) -> list[dict]:
    """Per-kind counts of a job's variants by review status (confirmed = approved by a reviewer)."""
    return list(
        AugmentedVariant.objects.filter(job=job).values("kind").order_by("kind")
        .annotate(total=Count("id"), pending=Count("id", filter=Q(status="pending")),
                  confirmed=Count("id", filter=Q(status="approved")), rejected=Count("id", filter=Q(status="rejected")),
                  dropped=Count("id", filter=Q(status="dropped")))
    )


def job_variants_sample(*, job: BackgroundJob, limit: int = 20) -> QuerySet[AugmentedVariant]:
    return AugmentedVariant.objects.filter(job=job).select_related("item").order_by("-review_priority", "id")[:limit]


def weak_label_counts(*, project: Project) -> dict[str, int]:
    rows = (WeakLabel.objects.filter(item__project=project, job=None).values("source")
            .annotate(n=Count("id")).order_by("source"))
    return {r["source"]: r["n"] for r in rows}


def refine_jobs_for(*, project: Project, limit: int = 50) -> QuerySet[BackgroundJob]:
    """The project's label-refinement jobs, newest first (listed apart from training rounds)."""
    return (BackgroundJob.objects.filter(project=project, kind=BackgroundJob.Kind.REFINE)
            .select_related("created_by").order_by("-created_at", "-id")[:limit])


def refine_job_get(*, project: Project, job_id: int) -> BackgroundJob:
    job = (BackgroundJob.objects.filter(project=project, kind=BackgroundJob.Kind.REFINE, pk=job_id)
           .select_related("created_by", "project").first())
    if job is None:
        raise Http404("No such refinement job in this project.")
    return job
