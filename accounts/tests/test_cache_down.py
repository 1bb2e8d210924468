"""With the shared cache (Redis) unreachable, signing in keeps working: the throttles count in local memory.

The cache is a real Redis client pointed at a port nothing listens on (refused at once); the
end-to-end outage with a real Redis stopped under a served app is in tests/test_dependencies_down.py.
"""

import logging

import pytest
from django.core import mail
from django.core.cache import caches
from django.test import override_settings

from accounts.tests.factories import PASSWORD
from tests.processes import CLOSED_PORT_REDIS, Records

pytestmark = pytest.mark.django_db

DOWN_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CLOSED_PORT_REDIS,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}


@pytest.fixture
def cache_down(settings):
    settings.CACHES = DOWN_CACHE
    assert caches["default"]._servers == [CLOSED_PORT_REDIS]  # the override reached the cache handler
    with pytest.raises(Exception, match="Connection refused"):
        caches["default"].get("anything")


@pytest.fixture
def throttle_log():
    records = Records()
    logger = logging.getLogger("config.throttling")
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


def login(client, email, **extra):
    return client.post("/api/v1/auth/login/", {"email": email, "password": PASSWORD}, **extra)


def test_with_the_cache_unreachable_login_refresh_register_and_reset_answer(
    api_client, user, cache_down, django_capture_on_commit_callbacks
):
    logged_in = login(api_client, user.email)
    assert logged_in.status_code == 200
    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": logged_in.json()["tokens"]["refresh"]})
    assert refreshed.status_code == 200
    password = "a-Long-enough-passphrase-7"
    body = {"email": "new@example.org", "password": password, "password_confirm": password}
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post("/api/v1/auth/register/", body).status_code == 201
        assert api_client.post("/api/v1/auth/password/reset/", {"email": user.email}).status_code == 200
    assert sorted(message.to[0] for message in mail.outbox) == ["new@example.org", user.email]


@override_settings(AUTH_THROTTLE_RATES={"auth_ip": "3/min", "auth_account": "100/min"})
def test_with_the_cache_unreachable_the_limit_holds_in_local_memory_and_the_outage_is_logged_once(
    api_client, user, cache_down, throttle_log
):
    assert [login(api_client, user.email).status_code for _ in range(3)] == [200, 200, 200]
    assert login(api_client, user.email).status_code == 429
    assert login(api_client, user.email, REMOTE_ADDR="10.9.9.9").status_code == 200  # counted per address still
    warnings = [r for r in throttle_log.records if "throttle_cache_unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
