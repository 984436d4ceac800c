"""Per-user API tokens: the key is shown once at creation; only its sha256 is stored.

A token may expire (``expires_at``; it then fails authentication like a revoked one) and
may be read-only (``scope=read``: safe methods and ``/v1/moderations`` only, enforced by
``annotations.api.permissions.TokenScope``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from annotations.errors import FieldError, PermissionDenied
from annotations.models import ApiToken, Membership, Role

KEY_PREFIX = "umb_"
MAX_EXPIRY_DAYS = 3650
# last_used_at is a hint for audits, not a log: write it at most this often per token.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token and its plaintext key (never retrievable again)."""

    token: ApiToken
    key: str


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def token_can_manage_for(*, actor, user) -> bool:
    """Whether ``actor`` may create or revoke tokens of ``user``.

    Everyone manages their own tokens. A project admin manages the tokens of a user only
    when every project that user belongs to is one the actor administers: a token acts as
    its user everywhere, so an admin must not mint a credential that reaches into a
    project where they hold no admin role.
    """
    if not actor.is_authenticated or not actor.is_active:
        return False
    if actor.pk == user.pk or actor.is_superuser:
        return True
    if user.is_superuser:
        return False
    user_projects = set(Membership.objects.filter(user=user).values_list("project_id", flat=True))
    if not user_projects:
        return False
    admin_projects = set(Membership.objects.filter(user=actor, role=Role.ADMIN).values_list("project_id", flat=True))
    return user_projects <= admin_projects


def token_can_revoke_for(*, actor, user) -> bool:
    """Whether ``actor`` may revoke tokens of ``user``: self, superuser, or an admin of any project of theirs.

    Revoking only removes access, so any admin who shares a project with the user may cut
    off a leaked token.
    """
    if not actor.is_authenticated or not actor.is_active:
        return False
    if actor.pk == user.pk or actor.is_superuser:
        return True
    if user.is_superuser:
        return False
    return Membership.objects.filter(user=actor, role=Role.ADMIN, project__memberships__user=user).exists()


@transaction.atomic
def api_token_create(
    *, user, name: str, created_by, expires_in_days: int | None = None, scope: str = ApiToken.Scope.READ_WRITE
) -> IssuedToken:
    """Create a token for ``user``; the returned key is the only copy of the secret.

    ``expires_in_days`` (1…3650, None = never) sets an expiry; ``scope="read"`` makes it read-only.
    """
    name = (name or "").strip()
    if not name:
        raise FieldError("A token needs a name (what script or machine uses it).", field="name")
    if len(name) > 100:
        raise FieldError("Token names are at most 100 characters.", field="name")
    if scope not in ApiToken.Scope.values:
        raise FieldError(f"Unknown scope {scope!r}; expected one of {', '.join(ApiToken.Scope.values)}.", field="scope")
    if expires_in_days is not None and (
        isinstance(expires_in_days, bool)
        or not isinstance(expires_in_days, int)
        or not 1 <= expires_in_days <= MAX_EXPIRY_DAYS
    ):
        raise FieldError(f"A token expires after 1 to {MAX_EXPIRY_DAYS} days (or never).", field="expires_in_days")
    if not user.is_active:
        raise FieldError("Inactive users cannot get tokens.", field="user")
    if not token_can_manage_for(actor=created_by, user=user):
        raise PermissionDenied("You may create tokens only for yourself or for members of projects you administer.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken(
        user=user,
        name=name,
        key_hash=token_hash(key),
        prefix=key[:12],
        created_by=created_by,
        scope=scope,
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    return IssuedToken(token=token, key=key)


@transaction.atomic
def api_token_revoke(*, token: ApiToken, user) -> ApiToken:
    """Revoke ``token`` (kept for audit); revoking twice is a no-op."""
    if not token_can_revoke_for(actor=user, user=token.user):
        raise PermissionDenied("You may revoke only your own tokens or those of members of projects you administer.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The live token for ``key`` (user loaded), touching ``last_used_at``; None if unknown, revoked or expired."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    from annotations.selectors.serving import token_with_user

    token = token_with_user(key_hash=token_hash(key))
    now = timezone.now()
    if token is None or not token.user.is_active or token.is_expired(now):
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
