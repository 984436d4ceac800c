"""Token scopes: a read-only token may read, and score texts, but never change anything."""

from __future__ import annotations

from rest_framework import permissions

from annotations.models import ApiToken


class TokenScope(permissions.BasePermission):
    """Refuse unsafe methods to read-only tokens, except on views that set ``read_token_may_post``."""

    message = "This API token is read-only: it may read and use /v1/moderations, not change anything."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken) or token.scope != ApiToken.Scope.READ:
            return True
        return request.method in permissions.SAFE_METHODS or getattr(view, "read_token_may_post", False)
