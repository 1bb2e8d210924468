"""Liveness and readiness probes: what a load balancer or orchestrator sees."""

import pytest
from django.core.cache import caches
from django.test import override_settings

from config.celery import app

pytestmark = pytest.mark.django_db

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """The storage check writes and deletes a file; keep it out of the checkout's .local/media."""
    settings.MEDIA_ROOT = str(tmp_path)


def test_liveness_answers_ok_without_auth(client):
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_answers_ok_when_every_dependency_is_up(client):
    response = client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "down": [],
        "checks": {"database": "ok", "cache": "ok", "storage": "ok"},
    }


def test_readiness_storage_check_leaves_no_file_behind(client, tmp_path):
    client.get("/health/ready/")

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_readiness_answers_503_naming_the_cache_when_redis_is_unreachable(client):
    down_cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CLOSED_PORT_REDIS,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    with override_settings(CACHES=down_cache):
        assert caches["default"]._servers == [CLOSED_PORT_REDIS]  # the override reached the cache handler

        response = client.get("/health/ready/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["cache"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] == "ok"
    assert body["checks"]["cache"] != "ok"
    assert "Connection Error" in body["checks"]["cache"]


def test_readiness_recovers_once_the_cache_is_back(client):
    down_cache = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED_PORT_REDIS}}
    with override_settings(CACHES=down_cache):
        assert client.get("/health/ready/").status_code == 503

    response = client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json()["down"] == []


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_readiness_checks_the_broker_when_tasks_are_not_eager(client):
    response = client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "storage": "ok", "broker": "ok"}


@pytest.fixture
def broker_at_closed_port():
    """Point the Celery app's write connection (what the Broker check opens) at a dead Redis."""
    previous = app.conf.broker_write_url
    app.conf.broker_write_url = CLOSED_PORT_REDIS
    try:
        yield
    finally:
        app.conf.broker_write_url = previous


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_readiness_answers_503_naming_the_broker_when_it_is_unreachable(client, broker_at_closed_port):
    response = client.get("/health/ready/")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "down": ["broker"],
        "checks": {
            "database": "ok",
            "cache": "ok",
            "storage": "ok",
            "broker": "Unavailable: Cannot connect to the broker",
        },
    }


def test_readiness_skips_the_broker_when_tasks_run_eagerly(client, broker_at_closed_port):
    response = client.get("/health/ready/")

    assert response.status_code == 200
    assert "broker" not in response.json()["checks"]


@override_settings(SECURE_SSL_REDIRECT=True)
def test_probes_over_plain_http_are_not_redirected_to_https(client):
    assert client.get("/health/").status_code == 200
    assert client.get("/health/ready/").status_code == 200
    redirected = client.get("/api/v1/auth/current-user/")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/api/v1/auth/current-user/"
