"""The outsider harness: every API route and every admin page of patient data, tried by people who must not see it.

The owner is a patient; the outsiders are another patient, a clinician with no grant, a clinician whose grant
from the owner covers every scope but the route's, and clinicians whose grant for the route's scope expired or
was revoked (plus, on the API, another patient's device key). Each must get 404 (the admin: its "doesn't
exist" answer), see nothing of the owner, and change nothing, which a snapshot before and after checks.
Positive controls (the owner, a clinician whose grant covers the scope, staff) show the cases are not vacuous.

The registry is each app's `tests/outsider.py` (project-level third-party models: `config/tests/outsider.py`;
a new app such as `records` adds its own `records/tests/outsider.py`, found through INSTALLED_APPS). Keys:

API_ROUTES, by URL name under /api/v1/ (bare, e.g. "reading-detail") or /fhir/r4/ ("fhir:patient-read"):
    make(owner) -> the owner's object (detail routes: the one in the URL; list-level routes: the one that must
        not show); scope: the access scope, when the view declares none (`access_scope`), "any" for objects
        visible under any scope (the other-scopes actor is then not an outsider and is not tried);
    snapshot(obj) -> dict, beside the object's own row; body: what PUT/PATCH/POST send to a detail route;
    secret: a string of the owner's that no answer may contain; device_key: the route also takes device keys;
    patient_query: `?patient=<owner>` answers 404 to outsiders; query: the GET parameters a list-level route
    needs; post(owner, actor) -> the body a list-level POST sends (it may only ever act on the caller);
    post_status; own_rows_logged: why listing the outsider's own rows that name the owner writes to the
    access log (their own expired grant from the owner); check(body) -> bool for answers without ids;
    list_markers(owner, obj) -> the strings a list may not contain (default: the owner's id and the
    object's UUID); no_control / no_owner_control: why the positive control does not apply (API and admin).
NOT_PATIENT_SCOPED: URL name -> why the route holds no patient's data (login, the catalog, ...).
DEVICE_KEY_ROUTES: URL name -> {body, status}: only a device key may call it; a person's token is 401 and
    another device's key acts only on its own device.
DEVICE_KEY_ACTOR(owner) -> (device, key): makes a device key of `owner`.
ADMIN_MODELS: model label -> {make, scope}: the admin's scope is the ModelAdmin's `access_scope` when it
    declares one, else the entry's `scope`, else "metrics".
ADMIN_EXEMPT / ADMIN_STAFF_ONLY: model label -> why it is not patient data (staff-only ones must refuse
    clinicians, which is checked).
ADMIN_VIEWS: URL name of a ModelAdmin's extra page -> {args(owner), scope, post}.
OWNER_DATA: model label -> lookup of the owner: more rows in the before/after snapshot of the owner's data.
STAFF_WRITES: URL name -> {make_staff(staff), body, post(patient, clinician)} for routes that only staff (or an
    organization's clinicians) write: tests/test_bad_input.py sends its bad input to them as staff, on an
    object made by `make_staff`.
"""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_filters import ModelChoiceFilter, ModelMultipleChoiceFilter, UUIDFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.test import APIClient

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from config.filters import FilterBackend
from conftest import bearer

pytestmark = pytest.mark.django_db

ANY_SCOPE = "any"
DEFAULT_ADMIN_SCOPE = Scope.METRICS
SCOPES = list(Scope.values)
METHODS = ["get", "post", "put", "patch", "delete"]
PREFIXES = {"api/v1/": "", "fhir/r4/": "fhir:"}  # path prefix -> how its route names are written in the registry

OTHER_PATIENT = "other_patient"
CLINICIAN_OUTSIDERS = [
    "clinician_no_grant",
    "clinician_other_scopes",
    "clinician_expired_grant",
    "clinician_revoked_grant",
]
OTHER_DEVICE = "other_device"
GRANTED = "clinician_granted"  # the positive control


# --- The registry ---------------------------------------------------------------------------------------------------


def _registry_modules() -> list:
    modules = []
    for name in ["config", *(app.name for app in apps.get_app_configs())]:
        try:
            modules.append(importlib.import_module(f"{name}.tests.outsider"))
        except ModuleNotFoundError as exc:
            if exc.name not in (f"{name}.tests", f"{name}.tests.outsider"):
                raise
    return modules


MODULES = _registry_modules()
DUPLICATES: list[str] = []


def _merged(attribute: str) -> dict:
    merged: dict = {}
    for module in MODULES:
        for key, value in getattr(module, attribute, {}).items():
            if key in merged:
                DUPLICATES.append(f"{attribute}[{key!r}] in {module.__name__} and another registry")
            merged[key] = value
    return merged


API_ROUTES = _merged("API_ROUTES")
NOT_PATIENT_SCOPED = _merged("NOT_PATIENT_SCOPED")
DEVICE_KEY_ROUTES = _merged("DEVICE_KEY_ROUTES")
ADMIN_MODELS = _merged("ADMIN_MODELS")
ADMIN_EXEMPT = _merged("ADMIN_EXEMPT")
ADMIN_STAFF_ONLY = _merged("ADMIN_STAFF_ONLY")
ADMIN_VIEWS = _merged("ADMIN_VIEWS")
OWNER_DATA = _merged("OWNER_DATA")
STAFF_WRITES = _merged("STAFF_WRITES")
DEVICE_KEY_ACTOR = next(m.DEVICE_KEY_ACTOR for m in MODULES if hasattr(m, "DEVICE_KEY_ACTOR"))
SCOPE_MISMATCHES: list[str] = []


def _resolve_scope(label: str, declared, stated, default) -> str:  # noqa: ANN001
    """The view's own scope wins; the registry states it where the view has none. Both present must agree."""
    if declared is not None:
        if stated is not None and stated != declared:
            SCOPE_MISMATCHES.append(f"{label}: the view declares {declared!r}, the registry {stated!r}")
        return declared
    if stated is None and default is None:
        SCOPE_MISMATCHES.append(f"{label}: the view declares no access_scope; state `scope` in its registry entry")
        return DEFAULT_ADMIN_SCOPE
    return stated if stated is not None else default


# --- The API's routes, from the resolver ----------------------------------------------------------------------------


@dataclass
class Route:
    key: str  # the registry key
    name: str  # the name to reverse
    path: str
    view: type
    methods: frozenset[str]  # the methods the route answers
    kwarg: str | None  # the object's id in the URL; None for list-level routes
    scope: str = DEFAULT_ADMIN_SCOPE

    def url(self, pk=None) -> str:  # noqa: ANN001
        return reverse(self.name, kwargs={self.kwarg: str(pk)} if self.kwarg else None)


def _walk(patterns, prefix: str = "", namespace: str = ""):  # noqa: ANN001, ANN202
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern).lstrip("^").rstrip("$"), namespace, pattern


def _methods(callback) -> frozenset[str]:  # noqa: ANN001
    view = getattr(callback, "cls", None) or callback.view_class
    names = set(view.http_method_names)
    actions = getattr(callback, "actions", None)
    if actions is not None:
        return frozenset(method for method in actions if method in names)
    return frozenset(method for method in METHODS if method in names and hasattr(view, method))


def _api_routes() -> tuple[dict[str, Route], list[str]]:
    routes, unnamed = {}, []
    for path, namespace, pattern in _walk(get_resolver().url_patterns):
        prefix = next((p for p in PREFIXES if path.startswith(p)), None)
        if prefix is None:
            continue
        if not pattern.name:
            unnamed.append(path)
            continue
        key = PREFIXES[prefix] + pattern.name
        view = getattr(pattern.callback, "cls", None) or pattern.callback.view_class
        kwargs = list(pattern.pattern.regex.groupindex)
        entry = API_ROUTES.get(key, {})
        declared = getattr(view, "access_scope", None)
        route = Route(
            key=key,
            name=f"{namespace}:{pattern.name}" if namespace else pattern.name,
            path=path,
            view=view,
            methods=_methods(pattern.callback),
            kwarg=kwargs[0] if kwargs else None,
        )
        if key in API_ROUTES:
            route.scope = _resolve_scope(key, declared, entry.get("scope"), None)
        routes[key] = route
    return routes, unnamed


ROUTES, UNNAMED_ROUTES = _api_routes()


def _outsiders(scope: str, *, clinicians_only: bool = False) -> list[str]:
    kinds = ([] if clinicians_only else [OTHER_PATIENT]) + CLINICIAN_OUTSIDERS
    return [kind for kind in kinds if not (kind == "clinician_other_scopes" and scope == ANY_SCOPE)]


def _covered(scope: str) -> list[str]:
    return SCOPES if scope == ANY_SCOPE else [scope]


def _person(kind: str, owner, scope: str):  # noqa: ANN001, ANN202
    """The actor of `kind`, with whatever grant from the owner the kind names."""
    if kind == OTHER_PATIENT:
        return UserFactory()
    clinician = ClinicianFactory()
    now = timezone.now()
    covered = _covered(scope)
    grants = {
        "clinician_no_grant": None,
        "clinician_other_scopes": {"scopes": [s for s in SCOPES if s not in covered]},
        "clinician_expired_grant": {
            "scopes": covered,
            "granted_at": now - timedelta(days=30),
            "expires_at": now - timedelta(days=1),
        },
        "clinician_revoked_grant": {"scopes": covered, "revoked_at": now - timedelta(hours=1)},
        GRANTED: {"scopes": covered},
    }
    if grants[kind] is not None:
        CareTeamGrantFactory(patient=owner, clinician=clinician, **grants[kind])
    return clinician


def _api_client(kind: str, owner, scope: str):  # noqa: ANN001, ANN202
    if kind == OTHER_DEVICE:
        _, key = DEVICE_KEY_ACTOR(UserFactory())
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        return client, None
    actor = owner if kind == "owner" else _person(kind, owner, scope)
    return bearer(APIClient(), actor), actor


# --- Snapshots ------------------------------------------------------------------------------------------------------


def _row(obj: models.Model) -> dict:
    """Every stored column (model_to_dict leaves out the non-editable ones, such as a key's hash)."""
    values = {}
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname)
        values[field.attname] = value.name if hasattr(value, "storage") else value
    return values


def _owner_models() -> list[tuple[type[models.Model], str]]:
    found = []
    for label in ADMIN_MODELS:
        model = apps.get_model(label)
        model_admin = admin.site._registry.get(model)
        lookup = getattr(model_admin, "patient_field", None) or getattr(model_admin, "patient_lookup", None)
        found.append((model, ADMIN_MODELS[label].get("patient_field") or lookup or "user"))
    found += [(apps.get_model(label), lookup) for label, lookup in OWNER_DATA.items()]
    return found


OWNER_MODELS = _owner_models()


def _owner_data(owner) -> dict:  # noqa: ANN001
    """Every row of the owner's data (all columns, as JSON), and how many access-log rows name the owner.

    One query (PostgreSQL's row_to_json over a UNION ALL), since the harness takes two snapshots per case.
    """
    parts, params = [], []
    for model, lookup in OWNER_MODELS:
        sql, query_params = model.objects.filter(**{lookup: owner.pk}).order_by().query.sql_with_params()
        parts.append(f"SELECT %s AS label, row_to_json(t)::text AS row FROM ({sql}) t")
        params += [model._meta.label_lower, *query_params]
    # Refused writes are logged on purpose (checked on their own): every other row an outsider causes is a leak.
    parts.append("SELECT %s, count(*)::text FROM accounts_accesslog WHERE patient_id = %s AND action <> 'refused'")
    params += ["access_log_rows", owner.pk]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    data: dict = {model._meta.label_lower: [] for model, _ in OWNER_MODELS}
    for label, row in rows:
        data.setdefault(label, []).append(row)
    return {label: values if label == "access_log_rows" else sorted(values) for label, values in data.items()}


def _state(owner, obj, entry: dict) -> dict:  # noqa: ANN001
    fresh = type(obj).objects.filter(pk=obj.pk).first()
    state = {"object": _row(fresh) if fresh is not None else None, "owner": _owner_data(owner)}
    if "snapshot" in entry and fresh is not None:
        state["related"] = entry["snapshot"](fresh)
    return state


def _changes(before: dict, after: dict, path: str = "") -> list[str]:
    """Where two snapshots differ, as readable lines (so a failure says what an outsider changed)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(before.keys() | after.keys(), key=str):
            found += _changes(before.get(key), after.get(key), f"{path}.{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            line for i, (b, a) in enumerate(zip(before, after, strict=True)) for line in _changes(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def _text(response) -> str:  # noqa: ANN001
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    return body.decode(errors="replace")


def _owner_things_in(text: str, owner, entry: dict, requested: str, key: str) -> list[str]:  # noqa: ANN001
    if key.startswith("fhir:"):  # FHIR's OperationOutcome repeats the requested id
        text = text.replace(requested, "<requested id>")
    secrets = (str(owner.pk), owner.email, entry.get("secret"))
    return [f"the answer contains the owner's {secret!r}" for secret in secrets if secret and secret in text]


def _assert_nothing_of_the_owner(text: str, owner, entry: dict, *, allowed: str = "") -> None:  # noqa: ANN001
    text = text.replace(allowed, "<requested id>") if allowed else text
    for secret in (str(owner.pk), owner.email, entry.get("secret")):
        assert not secret or secret not in text, f"the answer contains the owner's {secret!r}: {text[:500]}"


# --- The registry is complete and agrees with the code --------------------------------------------------------------


def test_every_api_route_is_registered():
    registered = API_ROUTES.keys() | NOT_PATIENT_SCOPED.keys() | DEVICE_KEY_ROUTES.keys()
    missing = sorted(ROUTES.keys() - registered)
    assert missing == [], (
        f"add these routes to API_ROUTES (how to make the owner's object), NOT_PATIENT_SCOPED (why not) or "
        f"DEVICE_KEY_ROUTES in the tests/outsider.py of the app that owns the view: {missing}"
    )
    assert UNNAMED_ROUTES == [], f"name these routes so the outsider registry can list them: {UNNAMED_ROUTES}"


def test_every_registry_entry_names_a_route_or_model_that_exists():
    stale = sorted((API_ROUTES.keys() | NOT_PATIENT_SCOPED.keys() | DEVICE_KEY_ROUTES.keys()) - ROUTES.keys())
    registered = {model._meta.label_lower for model in admin.site._registry}
    stale += sorted((ADMIN_MODELS.keys() | ADMIN_EXEMPT.keys() | ADMIN_STAFF_ONLY.keys()) - registered)
    stale += sorted(ADMIN_VIEWS.keys() - set(ADMIN_EXTRA_VIEWS))
    assert stale == [], f"these registry entries name nothing that exists any more (moved or renamed?): {stale}"
    assert DUPLICATES == [], DUPLICATES


def test_every_admin_model_is_registered():
    listed = ADMIN_MODELS.keys() | ADMIN_EXEMPT.keys() | ADMIN_STAFF_ONLY.keys()
    missing = sorted(m._meta.label_lower for m in admin.site._registry if m._meta.label_lower not in listed)
    assert missing == [], (
        f"add these admin models to ADMIN_MODELS (patient data: how to make the owner's row) or to ADMIN_EXEMPT / "
        f"ADMIN_STAFF_ONLY (why not) in their app's tests/outsider.py: {missing}"
    )


def test_every_extra_admin_page_is_registered():
    missing = sorted(set(ADMIN_EXTRA_VIEWS) - ADMIN_VIEWS.keys())
    assert missing == [], f"add these admin pages to ADMIN_VIEWS in their app's tests/outsider.py: {missing}"


def test_views_and_registry_agree_on_each_scope():
    assert SCOPE_MISMATCHES == [], SCOPE_MISMATCHES


# --- API: detail routes and detail actions --------------------------------------------------------------------------


DETAIL_ROUTES = [r for key, r in sorted(ROUTES.items()) if r.kwarg and key in API_ROUTES]
LIST_ROUTES = [r for key, r in sorted(ROUTES.items()) if not r.kwarg and key in API_ROUTES]


def _detail_cases() -> list:
    return [
        pytest.param(route.key, kind, id=f"{route.key}-{kind}")
        for route in DETAIL_ROUTES
        for kind in [*_outsiders(route.scope), OTHER_DEVICE]
    ]


@pytest.fixture
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.mark.usefixtures("_media")
@pytest.mark.parametrize(("key", "kind"), _detail_cases())
def test_an_outsider_gets_404_from_a_detail_route_and_changes_nothing(key, kind):
    """Every method: 404 where the route has it, 405 where not (a device key on a person's route: 401).

    Each write the route has leaves one `refused` access-log row naming the owner, the resource and the object.
    """
    route, entry = ROUTES[key], API_ROUTES[key]
    owner = UserFactory()
    obj = entry["make"](owner)
    client, actor = _api_client(kind, owner, route.scope)
    before = _state(owner, obj, entry)
    problems = []

    for method in METHODS:
        response = getattr(client, method)(route.url(obj.pk), entry.get("body", {}), format="json")
        if kind == OTHER_DEVICE and not entry.get("device_key"):
            expected = 401  # a device key is not a person
        else:
            expected = 404 if method in route.methods else 405
        text = _text(response)
        if response.status_code != expected:
            problems.append(f"{method.upper()} {route.path}: {response.status_code}, not {expected}: {text[:200]}")
        problems += [f"{method.upper()}: {p}" for p in _owner_things_in(text, owner, entry, str(obj.pk), key)]
        problems += [f"after {method.upper()}: {change}" for change in _changes(before, _state(owner, obj, entry))]

    refused = list(
        AccessLog.objects.filter(action="refused").values_list("actor_id", "patient_id", "resource", "object_id")
    )
    writes = [m for m in METHODS if m != "get" and m in route.methods] if actor is not None else []
    if writes:
        expected = [(actor.pk, owner.pk, route.view.model._meta.model_name, str(obj.pk))] * len(writes)
    assert refused == (expected if writes else []), f"{kind} on {key}: refused writes logged {refused}, writes {writes}"
    assert problems == [], f"{kind} on {key}:\n" + "\n".join(problems)


def _control_cases() -> list:
    cases = []
    for route in DETAIL_ROUTES:
        entry = API_ROUTES[route.key]
        if "get" not in route.methods:
            continue
        if "no_owner_control" not in entry:
            cases.append(pytest.param(route.key, "owner", id=f"{route.key}-owner"))
        if "no_control" not in entry:
            cases.append(pytest.param(route.key, GRANTED, id=f"{route.key}-{GRANTED}"))
    return cases


@pytest.mark.usefixtures("_media")
@pytest.mark.parametrize(("key", "kind"), _control_cases())
def test_control_the_owner_and_a_granted_clinician_read_the_object(key, kind):
    route, entry = ROUTES[key], API_ROUTES[key]
    owner = UserFactory()
    obj = entry["make"](owner)
    client, reader = _api_client(kind, owner, route.scope)

    response = client.get(route.url(obj.pk))

    assert response.status_code == 200, _text(response)[:300]
    logged = AccessLog.objects.filter(patient_id=owner.pk, actor_id=reader.pk).count()
    assert logged == (0 if kind == "owner" else 1)


# --- API: list-level routes and actions -----------------------------------------------------------------------------


def _list_markers(entry: dict, owner, obj) -> set[str]:  # noqa: ANN001
    if "list_markers" in entry:
        return entry["list_markers"](owner, obj)
    markers = {str(owner.pk)}
    if isinstance(obj.pk, uuid.UUID):
        markers.add(str(obj.pk))
    if entry.get("secret"):
        markers.add(entry["secret"])
    return markers


def _assert_no_marker(text: str, markers: set[str], what: str) -> None:
    leaked = sorted(marker for marker in markers if marker in text)
    assert leaked == [], f"{what} shows the owner's {leaked}: {text[:500]}"


@pytest.mark.parametrize(
    ("key", "kind"),
    [pytest.param(r.key, kind, id=f"{r.key}-{kind}") for r in LIST_ROUTES for kind in _outsiders(r.scope)],
)
def test_an_outsider_never_sees_or_writes_the_owners_data_through_a_list_route(key, kind):
    route, entry = ROUTES[key], API_ROUTES[key]
    owner = UserFactory()
    obj = entry["make"](owner)
    client, actor = _api_client(kind, owner, route.scope)
    before = _state(owner, obj, entry)
    markers = _list_markers(entry, owner, obj)
    query = entry.get("query", {})

    if "get" in route.methods:
        response = client.get(route.url(), query)
        text = _text(response)
        assert response.status_code == 200, f"GET {route.path}: {text[:300]}"
        _assert_no_marker(text, markers, f"GET {route.path}")
        if "check" in entry:
            assert entry["check"](response.json()), text[:500]
        if entry.get("patient_query"):
            response = client.get(route.url(), {**query, "patient": str(owner.pk)})
            assert response.status_code == 404, f"GET {route.path}?patient=<owner>: {_text(response)[:300]}"
            _assert_nothing_of_the_owner(_text(response), owner, entry)
        if entry.get("query_with_patient"):
            response = client.get(route.url(), {**query, "patient": str(owner.pk)})
            assert response.status_code == 200, _text(response)[:300]
            # the Bundle's links repeat the query
            _assert_no_marker(_text(response), markers - {str(owner.pk)}, f"GET {route.path}?patient=<owner>")
    if "post" in route.methods:
        assert "post" in entry, f"state in the registry what a POST to {key} sends (`post`)"
        response = client.post(route.url(), entry["post"](owner, actor), format="json")
        if "post_status" in entry:
            assert response.status_code == entry["post_status"], _text(response)[:300]
        assert response.status_code < 500, _text(response)[:300]
    after = _state(owner, obj, entry)
    if "own_rows_logged" in entry:  # the registry says why the outsider's own rows naming the owner are logged
        after["owner"]["access_log_rows"] = before["owner"]["access_log_rows"]
    assert _changes(before, after) == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(r.key, id=r.key)
        for r in LIST_ROUTES
        if API_ROUTES[r.key].get("patient_query") and "no_control" not in API_ROUTES[r.key]
    ],
)
def test_control_a_granted_clinician_reads_the_owner_with_the_patient_parameter(key):
    route, entry = ROUTES[key], API_ROUTES[key]
    owner = UserFactory()
    entry["make"](owner)
    client, _ = _api_client(GRANTED, owner, route.scope)

    response = client.get(route.url(), {**entry.get("query", {}), "patient": str(owner.pk)})

    assert response.status_code == 200, _text(response)[:300]


# --- API: filters by id ---------------------------------------------------------------------------------------------


def _filterset_class(route: Route):  # noqa: ANN202
    """The FilterSet a list route's filter backend builds (declared, or made from `filterset_fields`)."""
    view = route.view
    declared = getattr(view, "filterset_class", None)
    model = declared._meta.model if declared is not None else getattr(view, "model", None)
    backends = [b for b in getattr(view, "filter_backends", []) if issubclass(b, DjangoFilterBackend)]
    if model is None or not backends:
        return None
    return backends[0]().get_filterset_class(view(), model.objects.none())


ROUTE_FILTERSETS = {key: fs for key, route in sorted(ROUTES.items()) if (fs := _filterset_class(route)) is not None}


def test_no_filter_looks_an_id_up_in_a_table():
    """A filter that checks an id against the related table (ModelChoiceFilter) tells which ids exist."""
    lookups = [
        f"{key}?{name}"
        for key, filterset in ROUTE_FILTERSETS.items()
        for name, declared in filterset.base_filters.items()
        if isinstance(declared, ModelChoiceFilter | ModelMultipleChoiceFilter)
    ]
    foreign_backends = [
        f"{key}: {backend.__name__}"
        for key, route in ROUTES.items()
        for backend in getattr(route.view, "filter_backends", [])
        if issubclass(backend, DjangoFilterBackend) and not issubclass(backend, FilterBackend)
    ]
    assert ROUTE_FILTERSETS, "no list route has filters: the harness found nothing to check"
    assert lookups == [], f"filter these by the id as a value (config.filters.FilterSet): {lookups}"
    assert foreign_backends == [], f"use config.filters.FilterBackend: {foreign_backends}"


def _id_of(obj: models.Model, field_name: str):  # noqa: ANN202
    """The value an id filter over `field_name` matches for `obj`, or None where the path leads nowhere."""
    value = obj
    for part in field_name.split("__"):
        try:
            value = getattr(value, part, None)
        except ObjectDoesNotExist:  # a reverse one-to-one with no row
            return None
        if value is None:
            return None
    return value.pk if isinstance(value, models.Model) else value


def _id_filter_cases() -> list:
    cases = []
    for key, filterset in ROUTE_FILTERSETS.items():
        if key not in API_ROUTES or not key.endswith("-list") or "get" not in ROUTES[key].methods:
            continue  # the filters of a list (other actions of its viewset share the FilterSet, not the filtering)
        for name, declared in filterset.base_filters.items():
            if isinstance(declared, UUIDFilter | ModelChoiceFilter | ModelMultipleChoiceFilter):
                for kind in [OTHER_PATIENT, "clinician_no_grant"]:
                    cases.append(pytest.param(key, name, kind, id=f"{key}?{name}-{kind}"))
    return cases


@pytest.mark.parametrize(("key", "name", "kind"), _id_filter_cases())
def test_a_filter_by_another_persons_id_answers_as_an_id_that_does_not_exist(key, name, kind):
    route, entry = ROUTES[key], API_ROUTES[key]
    owner = UserFactory()
    obj = entry["make"](owner)
    value = _id_of(obj, ROUTE_FILTERSETS[key].base_filters[name].field_name)
    if value is None:
        pytest.skip(f"the registry's object of {key} has no {name}")
    client, _ = _api_client(kind, owner, route.scope)
    query = entry.get("query", {})

    def answer(requested: str) -> tuple[int, str]:
        response = client.get(route.url(), {**query, name: requested})
        body = response.json()
        body.pop("request_id", None)
        return response.status_code, json.dumps(body, sort_keys=True).replace(requested, "<id>")

    theirs, made_up = answer(str(value)), answer(str(uuid.uuid4()))

    assert theirs == made_up
    assert theirs[0] in (200, 404), theirs


# --- API: routes only a device key may call -------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["owner", OTHER_PATIENT, GRANTED])
@pytest.mark.parametrize("key", sorted(DEVICE_KEY_ROUTES))
def test_a_persons_token_is_refused_on_a_device_route(key, person):
    owner = UserFactory()
    DEVICE_KEY_ACTOR(owner)
    client, _ = _api_client(person, owner, ANY_SCOPE)
    before = _owner_data(owner)

    response = client.post(ROUTES[key].url(), DEVICE_KEY_ROUTES[key]["body"], format="json")

    assert response.status_code == 401, _text(response)[:300]
    assert _changes(before, _owner_data(owner)) == []


@pytest.mark.parametrize("key", sorted(DEVICE_KEY_ROUTES))
def test_another_devices_key_acts_only_on_its_own_device(key):
    owner, someone = UserFactory(), UserFactory()
    DEVICE_KEY_ACTOR(owner)
    _, key_of_another = DEVICE_KEY_ACTOR(someone)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key_of_another}")
    before, before_someone = _owner_data(owner), _owner_data(someone)

    response = client.post(ROUTES[key].url(), DEVICE_KEY_ROUTES[key]["body"], format="json")

    assert response.status_code == DEVICE_KEY_ROUTES[key]["status"], _text(response)[:300]
    assert _changes(before, _owner_data(owner)) == []
    assert _owner_data(someone) != before_someone  # control: the key did act, on its own device


# --- Admin ----------------------------------------------------------------------------------------------------------

STANDARD_ADMIN_PAGES = ("changelist", "add", "history", "delete", "change")


def _admin_extra_views() -> dict[str, type[models.Model]]:
    found = {}
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if label in ADMIN_EXEMPT or label in ADMIN_STAFF_ONLY:
            continue
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            if pattern.name and pattern.name.removeprefix(prefix) not in STANDARD_ADMIN_PAGES:
                found[pattern.name] = model
    return found


ADMIN_EXTRA_VIEWS = _admin_extra_views()


def _admin_scope(label: str) -> str:
    model_admin = admin.site._registry[apps.get_model(label)]
    stated = ADMIN_MODELS[label].get("scope")
    if hasattr(model_admin, "access_scope"):
        declared = model_admin.access_scope if model_admin.access_scope is not None else ANY_SCOPE
        return _resolve_scope(f"admin {label}", declared, stated, DEFAULT_ADMIN_SCOPE)
    return stated or DEFAULT_ADMIN_SCOPE


ADMIN_SCOPES = {label: _admin_scope(label) for label in sorted(ADMIN_MODELS)}
for _name, _entry in ADMIN_VIEWS.items():
    if "scope" not in _entry:
        SCOPE_MISMATCHES.append(f"admin page {_name}: state its `scope` in the registry")


def _admin_url(label: str, page: str, pk=None) -> str:  # noqa: ANN001
    app_label, model_name = label.split(".")
    return reverse(f"admin:{app_label}_{model_name}_{page}", args=[quote(pk)] if pk is not None else None)


def _logged_in(kind: str, owner, scope: str) -> Client:  # noqa: ANN001
    client = Client()
    client.force_login(owner if kind == "owner" else _person(kind, owner, scope))
    return client


def _ghost_pk(model: type[models.Model]):  # noqa: ANN202
    field = model._meta.pk
    while field.is_relation:  # a one-to-one primary key (Profile): the id of what it points at
        field = field.target_field
    return uuid.uuid4() if isinstance(field, models.UUIDField) else 2_000_000_000


def _admin_answer(response) -> str:  # noqa: ANN001
    """What the admin said, in one word where it is one of the expected answers."""
    if response.status_code == 404:
        return "not found"
    if response.status_code == 403:
        return "forbidden"
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    if (
        response.status_code == 302
        and response.url == reverse("admin:index")
        and any("doesn’t exist" in m for m in messages)
    ):
        return "not found"
    if response.status_code == 302 and response.url.startswith(reverse("admin:login")):
        return "login"
    return f"{response.status_code} {getattr(response, 'url', '')}".strip()


def _form_data(obj: models.Model) -> dict:
    """The object's own values as a form would post them, so a change page that (wrongly) accepts it saves."""
    data = {"_save": "Save"}
    for field in obj._meta.concrete_fields:
        if not field.editable or field.primary_key:
            continue
        value = getattr(obj, field.attname)
        if value is None:
            continue
        data[field.name] = value.name if hasattr(value, "storage") else str(value)
    return data


def _admin_request(client: Client, label: str, page: str, obj) -> object:  # noqa: ANN001
    pk = obj.pk
    if page == "change_post":
        return client.post(_admin_url(label, "change", pk), _form_data(obj))
    if page == "delete_post":
        return client.post(_admin_url(label, "delete", pk), {"post": "yes"})
    return client.get(_admin_url(label, page, pk))


ADMIN_OBJECT_PAGES = ["change", "history", "delete", "change_post", "delete_post"]


def _admin_cases() -> list:
    return [
        pytest.param(label, kind, id=f"{label}-{kind}")
        for label in sorted(ADMIN_MODELS)
        for kind in _outsiders(ADMIN_SCOPES[label], clinicians_only=True)
    ]


@pytest.mark.parametrize(("label", "kind"), _admin_cases())
def test_admin_changelist_and_search_do_not_show_the_owners_row(label, kind):
    owner = UserFactory()
    obj = ADMIN_MODELS[label]["make"](owner)
    client = _logged_in(kind, owner, ADMIN_SCOPES[label])
    before = _state(owner, obj, {})
    change_url = _admin_url(label, "change", obj.pk)

    for query in ({}, {"q": owner.email}):
        response = client.get(_admin_url(label, "changelist"), query)
        assert response.status_code == 200, f"{label} changelist {query}: {response.status_code}"
        listed = {str(row.pk) for row in response.context["cl"].result_list}
        assert str(obj.pk) not in listed, f"{kind} sees the owner's {label} {obj.pk} in the changelist {query}"
        assert change_url not in response.content.decode(), f"{kind} gets a link to {change_url} {query}"
    assert _changes(before, _state(owner, obj, {})) == []


@pytest.mark.parametrize(("label", "kind"), _admin_cases())
def test_admin_object_pages_of_the_owner_are_not_found(label, kind):
    """Change, history and delete pages, and POSTs to change and delete: the admin's "doesn't exist" answer.

    A refusal (403) is accepted only where the page refuses a made-up id just the same, so it tells nothing.
    """
    owner = UserFactory()
    obj = ADMIN_MODELS[label]["make"](owner)
    client = _logged_in(kind, owner, ADMIN_SCOPES[label])
    before = _state(owner, obj, {})
    ghost = type(obj)(pk=_ghost_pk(type(obj)))
    problems = []

    for page in ADMIN_OBJECT_PAGES:
        answer = _admin_answer(_admin_request(client, label, page, obj))
        if answer != "not found" and not answer == "forbidden" == _admin_answer(
            _admin_request(client, label, page, ghost)
        ):
            problems.append(f"{page}: {answer}")
        problems += [f"after {page}: {change}" for change in _changes(before, _state(owner, obj, {}))]

    assert problems == [], f"{kind} on the owner's {label}:\n" + "\n".join(problems)


def _action_names(label: str) -> list[str]:
    model_admin = admin.site._registry[apps.get_model(label)]
    names = [name for name, _ in admin.site.actions]
    names += [a if isinstance(a, str) else a.__name__ for a in (model_admin.actions or []) if a not in names]
    return names


@pytest.mark.parametrize(
    ("label", "action", "kind"),
    [
        pytest.param(label, action, kind, id=f"{label}-{action}-{kind}")
        for label in sorted(ADMIN_MODELS)
        for action in _action_names(label)
        for kind in _outsiders(ADMIN_SCOPES[label], clinicians_only=True)
    ],
)
def test_admin_bulk_action_on_the_owners_row_changes_nothing(label, action, kind):
    owner = UserFactory()
    obj = ADMIN_MODELS[label]["make"](owner)
    client = _logged_in(kind, owner, ADMIN_SCOPES[label])
    before = _state(owner, obj, {})

    response = client.post(
        _admin_url(label, "changelist"),
        {"action": action, "_selected_action": [str(obj.pk)], "index": "0", "post": "yes"},
    )

    assert response.status_code in (200, 302, 403), response.status_code
    assert _changes(before, _state(owner, obj, {})) == []


@pytest.mark.parametrize(
    ("label", "page"),
    [
        pytest.param(label, page, id=f"{label}-{page}")
        for label in sorted(ADMIN_MODELS)
        for page in ["changelist", "change", "history", "delete"]
    ],
)
def test_admin_sends_a_patient_to_the_login_page(label, page):
    owner = UserFactory()
    obj = ADMIN_MODELS[label]["make"](owner)
    client = _logged_in(OTHER_PATIENT, owner, ANY_SCOPE)

    response = client.get(_admin_url(label, page, None if page == "changelist" else obj.pk))

    assert _admin_answer(response) == "login"


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        pytest.param(label, kind, id=f"{kind}-{label}")
        for label in sorted(ADMIN_MODELS)
        for kind in [GRANTED, "staff"]
        if kind == "staff" or "no_control" not in ADMIN_MODELS[label]
    ],
)
def test_control_a_granted_clinician_and_staff_see_the_owners_row_in_the_admin(label, kind):
    owner = UserFactory()
    obj = ADMIN_MODELS[label]["make"](owner)
    if kind == "staff":
        client = Client()
        client.force_login(UserFactory(role="staff", is_superuser=True))
    else:
        client = _logged_in(kind, owner, ADMIN_SCOPES[label])

    response = client.get(_admin_url(label, "changelist"))

    assert response.status_code == 200
    assert str(obj.pk) in {str(row.pk) for row in response.context["cl"].result_list}
    assert client.get(_admin_url(label, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("label", sorted(ADMIN_STAFF_ONLY))
def test_admin_staff_only_models_refuse_clinicians(label):
    client = _logged_in("clinician_no_grant", UserFactory(), ANY_SCOPE)

    assert client.get(_admin_url(label, "changelist")).status_code == 403


# --- Admin: extra pages and related choices -------------------------------------------------------------------------


def _admin_view_url(name: str, owner) -> str:  # noqa: ANN001
    return reverse(f"admin:{name}", args=ADMIN_VIEWS[name]["args"](owner))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param(name, kind, id=f"{name}-{kind}")
        for name in sorted(ADMIN_VIEWS)
        for kind in [*_outsiders(ADMIN_VIEWS[name].get("scope", DEFAULT_ADMIN_SCOPE), clinicians_only=True)]
    ],
)
def test_admin_extra_page_of_the_owner_is_not_found(name, kind):
    entry = ADMIN_VIEWS[name]
    owner = UserFactory()
    client = _logged_in(kind, owner, entry.get("scope", DEFAULT_ADMIN_SCOPE))
    before = _owner_data(owner)

    for method, data in [("get", None), *([("post", entry["post"])] if "post" in entry else [])]:
        response = getattr(client, method)(_admin_view_url(name, owner), data)
        answer = _admin_answer(response)
        if answer != "not found":
            ghost = getattr(client, method)(_admin_view_url(name, UserFactory.build(pk=uuid.uuid4())), data)
            assert answer == "forbidden" == _admin_answer(ghost), f"{kind} {method.upper()} {name}: {answer}"
        _assert_nothing_of_the_owner(response.content.decode(), owner, {})
    assert _changes(before, _owner_data(owner)) == []


@pytest.mark.parametrize("name", sorted(ADMIN_VIEWS))
def test_admin_extra_page_sends_a_patient_to_the_login_page(name):
    owner = UserFactory()
    client = _logged_in(OTHER_PATIENT, owner, ANY_SCOPE)

    assert _admin_answer(client.get(_admin_view_url(name, owner))) == "login"


@pytest.mark.parametrize(
    "name", [pytest.param(n, id=n) for n in sorted(ADMIN_VIEWS) if ADMIN_VIEWS[n].get("scope") != ANY_SCOPE]
)
def test_control_a_granted_clinician_opens_the_owners_admin_page(name):
    owner = UserFactory()
    client = _logged_in(GRANTED, owner, ADMIN_VIEWS[name]["scope"])

    response = client.get(_admin_view_url(name, owner))

    assert response.status_code == 200
    assert AccessLog.objects.filter(patient_id=owner.pk).count() == 1


def _autocomplete_cases() -> list:
    """Every autocomplete field (of a ModelAdmin or its inlines) whose choices are patient data."""
    cases = []
    for model_admin in admin.site._registry.values():
        for source in [model_admin, *(inline(model_admin.model, admin.site) for inline in model_admin.inlines)]:
            for field_name in source.autocomplete_fields:
                remote = source.model._meta.get_field(field_name).remote_field.model._meta.label_lower
                if remote in ADMIN_MODELS:
                    for kind in _outsiders(ADMIN_SCOPES[remote], clinicians_only=True):
                        cases.append(
                            pytest.param(
                                source.model._meta.label_lower,
                                field_name,
                                remote,
                                kind,
                                id=f"{source.model._meta.label_lower}.{field_name}-{kind}",
                            )
                        )
    return cases or [
        pytest.param(None, None, None, None, marks=pytest.mark.skip(reason="no autocomplete field offers patient data"))
    ]


@pytest.mark.parametrize(("source", "field_name", "remote", "kind"), _autocomplete_cases())
def test_admin_autocomplete_does_not_offer_the_owner(source, field_name, remote, kind):
    owner = UserFactory()
    obj = ADMIN_MODELS[remote]["make"](owner)
    client = _logged_in(kind, owner, ADMIN_SCOPES[remote])
    app_label, model_name = source.split(".")

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": ""},
    )

    if response.status_code == 200:
        assert str(obj.pk) not in {item["id"] for item in response.json()["results"]}
    else:
        assert response.status_code == 403
