"""Fixtures every app's tests share: people, clients, and the outsider harness's registry."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import ClinicianFactory, UserFactory
from accounts.tokens import issue_tokens


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle counters and lockouts live in the shared cache: each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _metric_catalog(request):
    """The catalog comes from a data migration, and a transactional test's flush empties it: restore it."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if marker is None and "db" not in names and "transactional_db" not in names:
        yield
        return
    transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from health_metrics.catalog import sync_catalog
    from health_metrics.models import MetricType

    if MetricType.objects.count() < 50:
        sync_catalog(MetricType)
    yield


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
