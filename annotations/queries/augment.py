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


def refine_charts(*, result: dict | None) -> dict | None:
    """θ̂ of each set and agreement with held-out human labels, per refinement iteration."""
    from annotations import charts

    iterations = [it for it in (result or {}).get("iterations") or [] if isinstance(it, dict)]
    if not iterations:
        return None
    thetas = [(it["iteration"], it["theta"]) for it in iterations if it.get("theta")]
    theta = charts.line_chart(
        [charts.Series("θ̂ harmful set", [(i, t["theta_p"]) for i, t in thetas], colour=3),
         charts.Series("θ̂ unharmful set", [(i, t["theta_n"]) for i, t in thetas], colour=2)],
        title="Estimated share of harmful items in each set, per iteration (0 = the noisy start)",
        x_label="iteration", y_label="θ̂ (share harmful)", y_range=(0.0, 1.0), kind="refine-theta") if thetas else None
    tests = [(it["iteration"], it.get("test") or {}) for it in iterations]
    agreement = charts.line_chart(
        [charts.Series("accuracy", [(i, t["accuracy"]) for i, t in tests if t.get("accuracy") is not None]),
         charts.Series("F1", [(i, t["f1"]) for i, t in tests if t.get("f1") is not None])],
        title="Agreement of the refined labels with held-out human labels, per iteration",
        x_label="iteration", y_label="agreement", y_range=(0.0, 1.0), kind="refine-agreement",
    ) if any(t.get("accuracy") is not None for _, t in tests) else None
    return {"theta": theta, "agreement": agreement}
