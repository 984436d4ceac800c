"""A Redis cache that degrades to "no cache" while Redis is unreachable.

The cache only holds derived, re-computable values (API throttle counters, shared labeling
counts), so serving and labeling must not fail with it: a call that cannot reach Redis
answers like a miss (reads return the default, writes do nothing) and is logged. After a
failure the backend skips Redis for ``RETRY_AFTER_SECONDS`` so a dead server costs each
request nothing, then tries again. ``settings.CACHES`` selects it for ``CACHE_URL=redis://…``.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5.0


class ResilientRedisCache(RedisCache):
    """Django's Redis cache; connection errors become cache misses (see the module docstring)."""

    _lock = threading.Lock()
    _down_until = 0.0  # shared by every instance of the process: one outage, one back-off

    def _errors(self) -> tuple[type[BaseException], ...]:
        import redis

        return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

    def _call(self, name: str, fallback, *args, **kwargs):
        return self._guarded(getattr(super(), name), fallback, *args, **kwargs)

    def _guarded(self, fn, fallback, *args, **kwargs):
        if time.monotonic() < ResilientRedisCache._down_until:
            return fallback
        try:
            return fn(*args, **kwargs)
        except self._errors() as exc:
            with ResilientRedisCache._lock:
                first = time.monotonic() >= ResilientRedisCache._down_until
                ResilientRedisCache._down_until = time.monotonic() + RETRY_AFTER_SECONDS
            if first:
                logger.warning("cache unreachable (%s); working without it for %.0f s", exc, RETRY_AFTER_SECONDS)
            return fallback

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", False, key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._call("get", default, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", None, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._call("delete", False, key, version)

    def get_many(self, keys, version=None):
        return self._call("get_many", {}, keys, version)

    def has_key(self, key, version=None):
        return self._call("has_key", False, key, version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", delta, key, delta, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", list(data), data, timeout, version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", None, keys, version)

    def clear(self):
        return self._call("clear", False)

    def window_hit(self, current: str, previous: str, timeout: int) -> tuple[int, int]:
        """Count one hit under ``current`` (expiring after ``timeout`` s) and read ``previous``: one round trip."""
        return self._guarded(self._window_hit, (1, 0), current, previous, timeout)

    def _window_hit(self, current: str, previous: str, timeout: int) -> tuple[int, int]:
        cur_key, prev_key = self.make_and_validate_key(current), self.make_and_validate_key(previous)
        pipe = self._cache.get_client(cur_key, write=True).pipeline(transaction=False)
        pipe.incr(cur_key)
        pipe.expire(cur_key, timeout)
        pipe.get(prev_key)
        hits, _, prev = pipe.execute()
        return int(hits), int(prev or 0)


def window_hit(cache, current: str, previous: str, timeout: int) -> tuple[int, int]:
    """(hits in ``current`` counting this one, hits in ``previous``) for a windowed rate counter.

    One Redis round trip with ``ResilientRedisCache`` (an outage answers (1, 0): nothing is
    throttled while Redis is down); ``add``/``incr``/``get`` on any other cache backend.
    """
    if isinstance(cache, ResilientRedisCache):
        return cache.window_hit(current, previous, timeout)
    prev = cache.get(previous, 0)
    if cache.add(current, 1, timeout):
        return 1, prev
    try:
        return cache.incr(current), prev
    except ValueError:  # expired between add and incr
        cache.set(current, 1, timeout)
        return 1, prev


def shared_cache():
    """The default cache when every process of the deployment sees it (Redis), else None.

    A per-process cache (locmem, the default) cannot be invalidated from another process (a
    gunicorn worker, the Celery worker), so values that must never be stale are not kept in it.
    """
    from django.core.cache import caches

    backend = caches["default"]
    return backend if isinstance(backend, ResilientRedisCache) else None
