"""Throttle counts that survive the shared cache going down.

DRF's throttles keep their counts in the default cache (Redis). When it is unreachable every
throttled request would raise, so login, registration, password reset and refresh would stop
with the cache. `throttle_cache` counts in this process's memory while the shared cache is
down: the limit then holds per process (looser with several processes, but a limit), and the
outage is logged once when it starts and once when it ends. After a failure the shared cache
is left alone for RETRY_SECONDS, so a cache that hangs rather than refuses costs one timeout
per interval, not one per request.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = structlog.get_logger(__name__)

RETRY_SECONDS = 10


class FallbackCache:
    """The `get` / `set` a throttle needs: the shared cache, or local memory while it is unreachable."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.local = LocMemCache("throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
        self._lock = threading.Lock()
        self._down_until: float | None = None  # monotonic time before which the shared cache is not tried

    def get(self, key: str, default: Any = None) -> Any:
        return self._call("get", key, default)

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> None:
        self._call("set", key, value, timeout)

    def reset(self) -> None:
        """Forget the outage and the local counts (the cache settings changed)."""
        with self._lock:
            self._down_until = None
        self.local.clear()

    def _call(self, method: str, *args: Any) -> Any:
        down_until = self._down_until
        if down_until is None or time.monotonic() >= down_until:
            try:
                result = getattr(caches[self.alias], method)(*args)
            except Exception as exc:  # each backend raises its own errors; for a throttle all mean "unreachable"
                self._went_down(exc)
            else:
                if down_until is not None:
                    self._came_back()
                return result
        return getattr(self.local, method)(*args)

    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_until is None
            self._down_until = time.monotonic() + RETRY_SECONDS
        if first:
            logger.warning(
                "throttle_cache_unavailable",
                detail="The shared cache is unreachable: throttles count in this process's memory until it is back.",
                error=f"{type(exc).__name__}: {exc}",
            )

    def _came_back(self) -> None:
        with self._lock:
            was_down = self._down_until is not None
            self._down_until = None
        if was_down:
            self.local.clear()
            logger.info("throttle_cache_restored")


throttle_cache = FallbackCache()


@receiver(setting_changed)
def _forget_outage(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":  # a test pointed the cache elsewhere, or back
        throttle_cache.reset()
