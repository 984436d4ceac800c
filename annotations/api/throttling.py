"""Rate limits for token clients; browser sessions are not throttled (they are humans).

A sliding-window counter: hits are counted per token in fixed windows of the rate's period,
and a request is allowed while ``previous window × (share of it still in the last period) +
current window`` stays within the limit. That is O(1) per request (DRF's ``SimpleRateThrottle``
stores and rewrites the list of every request time in the period, 600 floats at the default
moderation rate) and one round trip with Redis. Every attempt counts, refused ones too.
"""

from __future__ import annotations

import math
import time

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from annotations.cache import window_hit
from annotations.models import ApiToken

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str) -> tuple[int, int]:
    """``"600/min"`` -> (600, 60): DRF's rate syntax (the period's first letter counts)."""
    num, period = rate.split("/")
    return int(num), PERIODS[period[0]]


class TokenRateThrottle(BaseThrottle):
    """Per-token limit; rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` at request time."""

    scope = "token"
    clock = staticmethod(time.time)  # tests move it across window boundaries

    def allow_request(self, request, view) -> bool:
        token = request.auth
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if not isinstance(token, ApiToken) or not rate:
            return True
        limit, period = rate_parse(rate)
        now = self.clock()
        window = int(now // period)
        elapsed = now - window * period
        base = f"throttle:{self.scope}:{token.pk}:"
        hits, prev = window_hit(caches["default"], f"{base}{window}", f"{base}{window - 1}", 2 * period)
        if prev * (1 - elapsed / period) + hits <= limit:
            return True
        self._wait = self._seconds_until_free(limit, period, elapsed, hits, prev)
        return False

    @staticmethod
    def _seconds_until_free(limit: int, period: int, elapsed: float, hits: int, prev: int) -> float:
        """When one more request would fit again, assuming none arrives in between."""
        room = limit - 1
        if hits <= room and prev:  # later in this window, once enough of the previous one has slid out
            return max(0.0, period * (1 - (room - hits) / prev) - elapsed)
        # in the next window, this window's hits become the sliding "previous" count
        return (period - elapsed) + period * max(0.0, 1 - room / max(hits, 1))

    def wait(self) -> float | None:
        return math.ceil(getattr(self, "_wait", 0.0)) or 1


class ModerationTokenRateThrottle(TokenRateThrottle):
    """Its own bucket for ``/v1/moderations`` (scripted scoring is bursty)."""

    scope = "moderation"
