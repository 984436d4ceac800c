"""Projects and memberships."""

from __future__ import annotations

from django.db import transaction

from annotations.errors import ApplicationError
from annotations.models import Membership, Project, Role


@transaction.atomic
def project_create(*, slug: str, name: str, task: str = Project.Task.PROMPT, categories: list[str] | None = None,
                   guidelines: str = "") -> Project:
    """Create a project after validating its fields."""
    if Project.objects.filter(slug=slug).exists():
        raise ApplicationError(f"A project with slug {slug!r} already exists.")
    project = Project(slug=slug, name=name, task=task, categories=list(categories or []), guidelines=guidelines)
    if len(project.categories) > 9:
        raise ApplicationError("At most 9 harm categories (keys 1…9).")
    project.full_clean()
    project.save()
    return project


@transaction.atomic
def membership_set(*, project: Project, user, role: str) -> Membership:
    """Give ``user`` exactly ``role`` in ``project`` (creating or changing the membership)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership
