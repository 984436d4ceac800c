"""Rate limits for token clients; browser sessions are not throttled (they are humans)."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from annotations.models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    """Per-token limit; rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` at request time."""

    scope = "token"

    def get_rate(self):
        # Read lazily (DRF binds THROTTLE_RATES at import), so settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class ModerationTokenRateThrottle(TokenRateThrottle):
    """Its own bucket for ``/v1/moderations`` (scripted scoring is bursty)."""

    scope = "moderation"
