"""Role rules, enforced on every HTML view and API endpoint (not only hidden in menus).

One way to authorise: the gate checks the role (``project_role_required`` on HTML views,
``ProjectRolePermission`` with ``min_role`` on API views; ``tests/security/test_authz_matrix.py``
walks the URL conf and checks every route declares one). Services do not check roles again:
they take the actor (``user``), and where an annotation records it, the role the gate resolved,
for provenance only. Management commands run as the operator and call services directly.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404
from rest_framework import permissions

from annotations.models import ROLE_RANK, Membership, Project, Role


def role_in(user, project: Project) -> str | None:
    """The user's role in ``project``: superusers are admins everywhere; None if not a member."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    known = getattr(project, "_umbra_role_of", None)  # set by project_for: (user id, role)
    if known is not None and known[0] == user.pk:
        return known[1]
    cache = getattr(user, "_umbra_roles", None)
    if cache is None:
        cache = dict(Membership.objects.filter(user=user).values_list("project_id", "role"))
        user._umbra_roles = cache
    return cache.get(project.pk)


def has_role(user, project: Project, minimum: str) -> bool:
    role = role_in(user, project)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def project_for(user, slug: str, minimum: str = Role.ANNOTATOR) -> Project:
    """The project ``slug`` if ``user`` holds at least ``minimum`` there.

    Non-members get 404 (the project's existence is not revealed); members with a lower
    role get 403.
    """
    qs = Project.objects.filter(slug=slug)
    member = user.is_authenticated and user.is_active and not user.is_superuser
    if member:  # the role comes with the project: one query on every project page, not two
        qs = qs.annotate(
            umbra_member_role=Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1])
        )
    project = qs.first()
    if project is None:
        raise Http404("No such project.")
    if member:
        project._umbra_role_of = (user.pk, project.umbra_member_role)
    role = role_in(user, project)
    if role is None:
        raise Http404("No such project.")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise PermissionDenied(f"This needs the {minimum} role in {project.name}.")
    return project


def project_role_required(minimum: str):
    """View decorator: login required, then ``request.project`` / ``request.role`` set from ``slug``."""

    def deco(view):
        @login_required
        @wraps(view)
        def wrapper(request, slug: str, *args, **kwargs):
            request.project = project_for(request.user, slug, minimum)
            request.role = role_in(request.user, request.project)
            return view(request, slug, *args, **kwargs)

        wrapper.umbra_min_role = minimum
        return wrapper

    return deco


class ProjectRolePermission(permissions.BasePermission):
    """DRF permission: the view declares ``min_role``; the project comes from ``slug``."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        slug = view.kwargs.get("slug")
        if slug is None:
            return True
        minimum = getattr(view, "min_role", Role.ANNOTATOR)
        if request.method in permissions.SAFE_METHODS:
            minimum = getattr(view, "min_role_read", minimum)
        view.project = project_for(request.user, slug, minimum)
        return True
