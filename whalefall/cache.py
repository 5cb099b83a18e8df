"""A Redis cache that degrades instead of failing the request when Redis is unreachable.

Django's ``RedisCache`` raises whatever redis-py raises, so with Redis stopped or frozen
every page touching the cache (login throttling, the bounds on anonymous events) answered
a 500 or hung. Here each operation has short socket timeouts, and an error makes the cache
behave as an empty one that stores nothing (``get`` gives the default, ``add`` and ``set``
False, ``incr`` raises ``ValueError`` as for a missing key). After an error the cache is
not tried again for ``WHALEFALL_CACHE_RETRY_SECONDS``, so a frozen Redis costs one timeout
per process and period, not one per operation.

Nothing that must not be lost lives in the cache: sessions are in the database.
"""

import threading
import time

import redis
import structlog
from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

log = structlog.get_logger(__name__)


class _Unavailable(Exception):
    pass


# Outages by server, shared by the per-thread cache objects of a process.
_down_until: dict[str, float] = {}
_lock = threading.Lock()


class DegradingRedisCache(RedisCache):
    """``RedisCache`` whose failures read as misses and lost writes, logged once per outage."""

    def _call(self, method: str, default, *args):
        server = ",".join(self._servers)
        if time.monotonic() < _down_until.get(server, 0.0):
            return default
        try:
            result = getattr(super(), method)(*args)
        except (redis.RedisError, OSError) as exc:
            self._failed(server, method, exc)
            return default
        if server in _down_until:
            with _lock:
                if _down_until.pop(server, None) is not None:
                    log.info("cache_available_again")
        return result

    def _failed(self, server: str, method: str, exc: BaseException) -> None:
        retry = settings.WHALEFALL_CACHE_RETRY_SECONDS
        with _lock:
            first = server not in _down_until
            _down_until[server] = time.monotonic() + retry
        if first:
            log.warning(
                "cache_unavailable",
                operation=method,
                error_type=type(exc).__name__,
                retry_seconds=retry,
            )

    def get(self, key, default=None, version=None):
        return self._call("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._call("get_many", {}, keys, version)

    def has_key(self, key, version=None):
        return self._call("has_key", False, key, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", False, key, value, timeout, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", None, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", list(data), data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._call("delete", False, key, version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", None, keys, version)

    def clear(self):
        return self._call("clear", None)

    def incr(self, key, delta=1, version=None):
        result = self._call("incr", _Unavailable, key, delta, version)
        if result is _Unavailable:
            raise ValueError(f"Key '{key}' not found (cache unavailable)")
        return result
