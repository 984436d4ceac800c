"""Query shapes behind the REST API (filters applied here, never in views)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from annotations.models import (
    ApiToken,
    AugmentedVariant,
    BackgroundJob,
    Item,
    Membership,
    ModelVersion,
    Prediction,
    Project,
    Role,
    TrainingRound,
)

LABEL_STATES = ("labeled", "unlabeled", "harmful", "unharmful", "excluded")


def items_for_api(*, project: Project, split: str | None = None, label_state: str | None = None,
                  q: str | None = None) -> QuerySet[Item]:
    """The project's items, filtered by split, label state and a case-insensitive text search."""
    qs = Item.objects.filter(project=project)
    if split:
        qs = qs.filter(split=split)
    if label_state == "labeled":
        qs = qs.exclude(human_label="")
    elif label_state == "unlabeled":
        qs = qs.filter(human_label="", excluded=False)
    elif label_state in ("harmful", "unharmful"):
        qs = qs.filter(human_label=label_state)
    elif label_state == "excluded":
        qs = qs.filter(excluded=True)
    if q:
        qs = qs.filter(Q(text__icontains=q) | Q(prompt__icontains=q))
    return qs


def rounds_for_api(*, project: Project, status: str | None = None) -> QuerySet[TrainingRound]:
    qs = TrainingRound.objects.filter(project=project).select_related("started_by", "model_version")
    if status:
        qs = qs.filter(status=status)
    return qs


def succeeded_round(*, project: Project, round_id: int) -> TrainingRound | None:
    """A round of ``project`` whose predictions may be read (succeeded rounds only)."""
    return TrainingRound.objects.filter(
        project=project, pk=round_id, status=TrainingRound.Status.SUCCEEDED
    ).first()


def predictions_for_api(*, training_round: TrainingRound, agreement: str | None = None,
                        min_priority: float | None = None, pseudo_label: str | None = None) -> QuerySet[Prediction]:
    """Predictions of a round in review order (highest priority first)."""
    qs = Prediction.objects.filter(training_round=training_round).select_related("item")
    if agreement is not None:
        qs = qs.filter(agreement=agreement)
    if min_priority is not None:
        qs = qs.filter(review_priority__gte=min_priority)
    if pseudo_label:
        qs = qs.filter(pseudo_label=pseudo_label)
    return qs


def variants_for_api(*, project: Project, status: str | None = None, kind: str | None = None,
                     loss_flagged: bool = False) -> QuerySet[AugmentedVariant]:
    qs = AugmentedVariant.objects.filter(item__project=project).select_related("item", "reviewer")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if loss_flagged:
        qs = qs.filter(curation__has_key="loss_flag")
    return qs


def model_versions_for_api(*, project: Project) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(project=project).select_related("training_round", "project")


def export_jobs_for(*, project: Project) -> QuerySet[BackgroundJob]:
    return BackgroundJob.objects.filter(project=project, kind=BackgroundJob.Kind.EXPORT).select_related("created_by")


def tokens_visible_to(*, user, project: Project | None = None) -> QuerySet[ApiToken]:
    """Tokens ``user`` may see: their own, plus (as project admin) those of the project's members."""
    qs = ApiToken.objects.select_related("user", "created_by")
    if project is not None:
        return qs.filter(user__memberships__project=project).distinct()
    if user.is_superuser:
        return qs
    admin_of = Membership.objects.filter(user=user, role=Role.ADMIN).values("project_id")
    return qs.filter(Q(user=user) | Q(user__memberships__project_id__in=admin_of)).distinct()


def project_members_users(*, project: Project):
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")
