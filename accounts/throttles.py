"""Throttles for login, registration and password reset: per client address and per account.

Rates are read from settings at request time (AUTH_THROTTLE_RATES, set by environment
variables), so a deployment or a test can change them; counts live in the shared cache, or
in this process's memory while that is unreachable (config.throttling), so signing in keeps
working with Redis down.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from config.throttling import throttle_cache


class _AuthThrottle(SimpleRateThrottle):
    rate_name: str
    cache = throttle_cache

    def get_rate(self) -> str | None:
        return settings.AUTH_THROTTLE_RATES.get(self.rate_name)

    def __init__(self) -> None:  # the rate is not known until settings are read
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)


class AuthIPThrottle(_AuthThrottle):
    rate_name = "auth_ip"
    scope = "auth_ip"

    def get_cache_key(self, request, view) -> str:  # noqa: ANN001
        return self.cache_format % {"scope": f"{self.scope}:{view.throttle_scope}", "ident": self.get_ident(request)}


class AuthAccountThrottle(_AuthThrottle):
    """Keyed by the email in the body, so one account cannot be hammered from many addresses."""

    rate_name = "auth_account"
    scope = "auth_account"

    def get_cache_key(self, request, view) -> str | None:  # noqa: ANN001
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(email, str) or not email.strip():
            return None
        # Any address is a safe key, even one with a lone surrogate (refused by the view right after).
        digest = hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": f"{self.scope}:{view.throttle_scope}", "ident": digest}
