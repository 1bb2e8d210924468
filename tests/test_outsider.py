"""The outsider harness: every detail route of the API router, tried by people who must not see the object.

An object owned by another patient must answer 404 to GET, PUT, PATCH and DELETE (405
where the route has no such method) and be unchanged afterwards. A new app is covered by
listing a factory per router basename in `<app>/tests/outsider.py`; a route with no
factory fails the harness, so none is forgotten.
"""

import importlib

import pytest
from django.apps import apps
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from accounts.api.base import OwnedViewSet
from accounts.tests.factories import ClinicianFactory, UserFactory
from config.api_router import router
from conftest import bearer

METHOD_ACTIONS = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}


def _factories() -> dict:
    found = {}
    for app in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{app.name}.tests.outsider")
        except ModuleNotFoundError:
            continue
        found.update(module.OUTSIDER_FACTORIES)
    return found


FACTORIES = _factories()
DETAIL_ROUTES = [
    (prefix, viewset, basename)
    for prefix, viewset, basename in router.registry
    if issubclass(viewset, OwnedViewSet)  # people's data; the rest (the metric catalog) is public
    and (hasattr(viewset, "retrieve") or hasattr(viewset, "update") or hasattr(viewset, "destroy"))
]


def test_every_detail_route_has_an_outsider_factory():
    missing = [basename for _, _, basename in DETAIL_ROUTES if basename not in FACTORIES]
    assert missing == [], f"add these basenames to an app's tests/outsider.py: {missing}"


def _snapshot(obj):
    fresh = type(obj).objects.filter(pk=obj.pk).first()
    return model_to_dict(fresh) if fresh is not None else None


@pytest.mark.django_db
@pytest.mark.parametrize("actor_role", ["patient", "clinician_without_consent"])
@pytest.mark.parametrize("method", list(METHOD_ACTIONS))
@pytest.mark.parametrize(("prefix", "viewset", "basename"), DETAIL_ROUTES, ids=[b for _, _, b in DETAIL_ROUTES])
def test_someone_elses_object_is_not_found(prefix, viewset, basename, method, actor_role):
    owner = UserFactory()
    obj = FACTORIES[basename](owner)
    actor = UserFactory() if actor_role == "patient" else ClinicianFactory()
    before = _snapshot(obj)
    client = bearer(APIClient(), actor)
    response = getattr(client, method)(f"/api/v1/{prefix}/{obj.pk}/", {}, format="json")
    allowed = hasattr(viewset, METHOD_ACTIONS[method]) and method in viewset.http_method_names
    expected = 404 if allowed else 405
    assert response.status_code == expected, response.content
    assert _snapshot(obj) == before
    listing = client.get(f"/api/v1/{prefix}/")
    if listing.status_code == 200:
        assert str(obj.pk) not in {str(item.get("id")) for item in listing.json()["results"]}
