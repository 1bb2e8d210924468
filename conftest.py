"""Fixtures every app's tests share: people, clients, and the outsider harness's registry."""

import logging

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import ClinicianFactory, UserFactory
from accounts.tokens import issue_tokens
from config.celery import app as celery_app


@pytest.fixture(autouse=True)
def _responses_follow_the_schema(request, monkeypatch):
    """Every response the test client gets must match the OpenAPI document (tests/schema_conformance.py)."""
    if request.node.get_closest_marker("no_schema_check"):
        yield
        return
    from django.test import Client

    from tests import schema_conformance

    send = Client.request

    def request_and_check(client, **environ):
        response = send(client, **environ)
        schema_conformance.record(environ["REQUEST_METHOD"], environ["PATH_INFO"], response, request.node.nodeid)
        return response

    monkeypatch.setattr(Client, "request", request_and_check)
    yield


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle counters and lockouts live in the shared cache: each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _metric_catalog(request):
    """The catalogs and default alert rules come from data migrations; a transactional test's flush empties them."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if marker is None and "db" not in names and "transactional_db" not in names:
        yield
        return
    transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from health_metrics.catalog import get_catalog

    _reload_catalogs()  # normally a no-op (see pytest_runtest_teardown)
    get_catalog()  # read once per process, as a server does, so query counts never include it
    yield


def _reload_catalogs() -> None:
    """The metric and medication catalogs and the default alert rules, where a flush emptied them."""
    from health_metrics.alerts import sync_default_rules
    from health_metrics.catalog import sync_catalog
    from health_metrics.models import AlertRule, MetricType
    from medications.catalog import load_catalog
    from medications.models import InteractionRule

    if MetricType.objects.count() < 50:
        sync_catalog(MetricType)
    if not AlertRule.objects.filter(user__isnull=True).exists():
        sync_default_rules(AlertRule)
    if not InteractionRule.objects.exists():
        load_catalog()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a transactional test's flush, put the catalogs back, committed: otherwise every test after it would
    load them again inside its own (rolled back) transaction."""
    yield
    marker = item.get_closest_marker("django_db")
    transactional = "transactional_db" in getattr(item, "fixturenames", ()) or bool(
        marker and marker.kwargs.get("transaction")
    )
    if transactional:
        from pytest_django.plugin import blocking_manager_key

        with item.config.stash[blocking_manager_key].unblock():
            _reload_catalogs()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory(email="patient@example.org")


@pytest.fixture
def other_user(db):
    """Charlie: another patient, who should have no access to `user`'s data."""
    return UserFactory(email="charlie@example.org")


@pytest.fixture
def clinician(db):
    return ClinicianFactory(email="dr.who@example.org")


@pytest.fixture
def staff(db):
    return UserFactory(email="staff@example.org", role="staff", is_superuser=True)


def bearer(client: APIClient, user) -> APIClient:
    """Authenticate the client with a real access token, as a mobile app would."""
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(user)['access']}")
    return client


@pytest.fixture
def as_user(api_client, user):
    return bearer(api_client, user)


# --- Real Celery workers ----------------------------------------------------------------


def _is_pytests(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture
def logging_restored():
    """An embedded worker reconfigures logging (Celery hijacks the root logger); put it back for later tests.

    pytest swaps its own capture handlers in and out per test phase, so those are kept as they are now.
    """
    names = ["", "celery", "celery.task", "celery.redirected", "multiprocessing"]
    loggers = {name: logging.getLogger(name) for name in names}
    saved = {name: (logger.handlers[:], logger.level, logger.propagate) for name, logger in loggers.items()}
    try:
        yield
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            current_pytest = [h for h in logger.handlers if _is_pytests(h)]
            logger.handlers = [h for h in handlers if not _is_pytests(h)] + current_pytest
            logger.setLevel(level)
            logger.propagate = propagate


@pytest.fixture
def not_eager():
    """Tasks go through the broker to a real worker for this test (eager mode off)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous
