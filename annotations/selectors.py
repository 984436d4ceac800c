"""Read-side query shapes; views never assemble non-trivial ORM queries themselves."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from annotations.models import BackgroundJob, Item, Label, Membership, Project


def projects_for(*, user) -> QuerySet[Project]:
    """Projects the user may see (all of them for superusers)."""
    qs = Project.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.order_by("name")


def project_counts(*, project: Project) -> dict[str, int]:
    """Item counts by split and label, for the dashboard."""
    row = Item.objects.filter(project=project).aggregate(
        total=Count("id"),
        pool=Count("id", filter=Q(split=Item.Split.POOL)),
        seed=Count("id", filter=Q(split=Item.Split.SEED)),
        evaluation=Count("id", filter=Q(split__in=[Item.Split.TEST, Item.Split.BENCH])),
        labeled_harmful=Count("id", filter=Q(human_label=Label.HARMFUL) & ~Q(split__in=[Item.Split.TEST, Item.Split.BENCH])),
        labeled_unharmful=Count("id", filter=Q(human_label=Label.UNHARMFUL) & ~Q(split__in=[Item.Split.TEST, Item.Split.BENCH])),
        excluded=Count("id", filter=Q(excluded=True)),
    )
    return row


def project_members(*, project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("role", "user__username")


def jobs_for(*, project: Project, kind: str | None = None, limit: int = 20) -> QuerySet[BackgroundJob]:
    qs = project.jobs.select_related("created_by")
    if kind:
        qs = qs.filter(kind=kind)
    return qs[:limit]
