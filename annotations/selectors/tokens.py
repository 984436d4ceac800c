"""API tokens a user may see (the tokens page and the API share this)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from annotations.models import ApiToken, Membership, Project, Role


def tokens_visible_to(*, user, project: Project | None = None) -> QuerySet[ApiToken]:
    """Tokens ``user`` may see: their own, plus (as project admin) those of the project's members."""
    qs = ApiToken.objects.select_related("user", "created_by")
    if project is not None:
        return qs.filter(user__memberships__project=project).distinct()
    if user.is_superuser:
        return qs
    admin_of = Membership.objects.filter(user=user, role=Role.ADMIN).values("project_id")
    return qs.filter(Q(user=user) | Q(user__memberships__project_id__in=admin_of)).distinct()
