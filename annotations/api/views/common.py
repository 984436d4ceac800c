"""Shared API plumbing: project scoping by role, cursor pagination, query-param validation."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.pagination import CursorPagination

from annotations.api.permissions import TokenScope
from annotations.models import Role
from annotations.permissions import ProjectRolePermission, role_in


class ProjectScopedMixin:
    """The view's project comes from the ``slug`` URL kwarg; ``min_role`` guards it (404 to non-members)."""

    permission_classes = [ProjectRolePermission, TokenScope]
    min_role = Role.ANNOTATOR

    @property
    def role(self) -> str | None:
        return role_in(self.request.user, self.project)


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class PriorityCursorPagination(IdCursorPagination):
    ordering = ("-review_priority", "id")


class NewestCursorPagination(IdCursorPagination):
    ordering = ("-created_at", "-id")


def query_params(serializer_class: type[serializers.Serializer], request) -> dict:
    """Validate query parameters with ``serializer_class`` (400 with field names on bad input)."""
    s = serializer_class(data=request.query_params)
    s.is_valid(raise_exception=True)
    return {k: v for k, v in s.validated_data.items() if v not in (None, "")}
