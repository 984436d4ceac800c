"""Projects and memberships."""

from __future__ import annotations

from django.db import transaction

from annotations.errors import ApplicationError
from annotations.models import Membership, Project, Role


@transaction.atomic
def project_create(
    *, slug: str, name: str, task: str = Project.Task.PROMPT, categories: list[str] | None = None, guidelines: str = ""
) -> Project:
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


# --- run from the browser: create, settings, members (admins act; services check) -----------

SETTINGS_FIELDS = (
    "name",
    "categories",
    "guidelines",
    "annotations_per_item",
    "use_unreviewed_curated_variants",
    "use_refined_labels",
    "refined_label_weight",
    "min_labels_per_class",
)


def _require_project_creator(user) -> None:
    from annotations.errors import PermissionDenied

    if user is None or not user.is_authenticated or not (user.is_staff or user.is_superuser):
        raise PermissionDenied("Only site staff can create projects; ask a site admin.")


@transaction.atomic
def project_create_by(
    *,
    user,
    slug: str,
    name: str,
    task: str = Project.Task.PROMPT,
    categories: list[str] | None = None,
    guidelines: str = "",
) -> Project:
    """Create a project from the browser (site staff only); its creator becomes its admin."""
    from django.core.exceptions import ValidationError

    from annotations.errors import FieldError

    _require_project_creator(user)
    if Project.objects.filter(slug=slug).exists():
        raise FieldError(f"A project with the short name {slug!r} already exists.", field="slug")
    try:
        project = project_create(slug=slug, name=name, task=task, categories=categories, guidelines=guidelines)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise FieldError(f"{field}: {' '.join(messages)}", field=field) from exc
    membership_set(project=project, user=user, role=Role.ADMIN)
    return project


@transaction.atomic
def project_settings_update(*, project: Project, user, **changes) -> Project:
    """Change project settings (admins only); unknown settings are refused, values validated."""
    from django.core.exceptions import ValidationError

    from annotations.errors import FieldError

    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise FieldError(f"Unknown project setting(s): {', '.join(unknown)}.", field=unknown[0])
    locked = Project.objects.select_for_update().get(pk=project.pk)
    for name, value in changes.items():
        setattr(locked, name, value)
    if len(locked.categories or []) > 9:
        raise FieldError("At most 9 harm categories (keys 1…9).", field="categories")
    if not 0.0 <= float(locked.refined_label_weight) <= 1.0:
        raise FieldError("The weight of a refined label is between 0 and 1.", field="refined_label_weight")
    try:
        locked.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise FieldError(" ".join(messages), field=field) from exc
    locked.save(update_fields=list(changes))
    for name in changes:
        setattr(project, name, getattr(locked, name))
    return project


def _last_admin_guard(project: Project, user, new_role: str | None) -> None:
    from annotations.errors import Conflict

    current = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    if (
        current == Role.ADMIN
        and new_role != Role.ADMIN
        and not Membership.objects.filter(project=project, role=Role.ADMIN).exclude(user=user).exists()
    ):
        raise Conflict(f"{user.username} is the project's only admin; make someone else admin first.")


@transaction.atomic
def project_member_set(*, project: Project, actor, username: str, role: str) -> Membership:
    """Add ``username`` to the project or change their role (admins only; the last admin stays)."""
    from django.contrib.auth import get_user_model

    from annotations.errors import FieldError

    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise FieldError(f"No user called {username.strip()!r}; a site admin creates accounts.", field="username")
    if role not in Role.values:
        raise FieldError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.", field="role")
    Project.objects.select_for_update().filter(pk=project.pk).first()
    _last_admin_guard(project, user, role)
    return membership_set(project=project, user=user, role=role)


@transaction.atomic
def project_member_remove(*, project: Project, actor, user_id: int) -> None:
    """Remove a member (admins only); the project's last admin cannot be removed."""
    from annotations.errors import NotFound

    membership = Membership.objects.select_related("user").filter(project=project, user_id=user_id).first()
    if membership is None:
        raise NotFound("No such member.")
    Project.objects.select_for_update().filter(pk=project.pk).first()
    _last_admin_guard(project, membership.user, None)
    membership.delete()
