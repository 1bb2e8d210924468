"""Bad input never answers 500, and a refused write stores nothing (issue #10 §1, checked the way §6 asks).

Every operation of the OpenAPI document (built in-process by drf-spectacular: the document /api/schema/
serves) gets every class of bad input, wherever its schema says a value of that kind goes:

- JSON nested 1,000 levels deep (past Python's recursion limit) and 100 levels (parsed, but past the API's
  limit), as the whole body and as the value of a field;
- U+0000 and a lone UTF-16 surrogate (U+D800) inside every string of the request body, and as the value and
  the key of free-form JSON; U+0000 and the UTF-8 bytes of a surrogate in every query and path parameter;
- datetimes and dates PostgreSQL or Python cannot hold (year 10000 once in UTC, year 1, UTC offsets beyond
  ±15:59) in every date and date-time field and parameter, and FHIR-style prefixed ones in every string
  parameter;
- integers beyond bigint in every integer field and parameter (`page` among them).

A write (an operation with a request body) must answer 4xx naming the field, or name it in the item's error of
a batch validated item by item, and store nothing: every table is fingerprinted before and after. Everything
else must answer below 500, a 400 naming the parameter, and a date or date-time parameter out of range is a
400. A `page` beyond bigint answers what a page just past the end answers.

Callers: the patient who owns one object of each detail route (made by the outsider registry's `make`, see
tests/test_outsider.py), with a valid body from the same registry where it has one (else the schema's
required fields); a device key for the routes only devices call; nobody for the public auth routes. Every GET
is tried again as staff. A new operation is covered as soon as it is in the schema.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django.urls import Resolver404, resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from conftest import bearer
from tests.test_outsider import API_ROUTES, DEVICE_KEY_ACTOR, DEVICE_KEY_ROUTES, STAFF_WRITES

pytestmark = pytest.mark.django_db

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
COMPONENTS = SCHEMA["components"]["schemas"]
WRITE_METHODS = {"post", "put", "patch"}

# Where the schema cannot say what is refused and what is an item's error. Each entry: (operationId, the
# field's path with `*` for list items), and why.
EXCLUDED_FIELDS = {
    ("iot_devices_ingest_create", "readings.*"): (
        "a device batch's readings are free-form objects checked one by one by the worker: a bad one is that "
        "item's error and the batch is stored (issue #9); iot_devices/tests/test_bad_readings.py sends every "
        "class into them"
    ),
}

DEEP = 1000  # past Python's recursion limit: json.loads itself raises RecursionError
NESTED = 100  # parsed fine, but deeper than the API follows
NUL = "\x00"
SURROGATE = "\ud800"
SURROGATE_BYTES = "%ED%A0%80"  # how a surrogate would look percent-encoded as UTF-8 (which cannot encode it)
BAD_DATETIMES = [
    "9999-12-31T23:59:59-12:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC
    "2026-03-01T08:00:00+18:00",  # Python takes offsets to ±23:59, PostgreSQL to ±15:59
    "2026-03-01T08:00:00-16:00",
]
BAD_DATES = ["9999-12-31", "0001-01-01"]
FHIR_DATES = ["le9999-12-31", "ge0001-01-01", "eq2026-03-01T08:00:00+18:00", "gt9999-12-31T23:59:59-12:00"]
BIG_INTEGERS = [2**63, -(2**63) - 1, 10**30]


# --- The schema --------------------------------------------------------------------------------------------


def _resolve(schema: dict) -> dict:
    """A schema with its $ref followed (and spectacular's one-element allOf / nullable oneOf unwrapped)."""
    while True:
        if "$ref" in schema:
            schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[1]]
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **_resolve(schema["allOf"][0])}
        elif "oneOf" in schema or "anyOf" in schema:
            options = [_resolve(option) for option in schema.get("oneOf", schema.get("anyOf"))]
            real = [o for o in options if o.get("enum") not in ([None], [""]) and o.get("type") != "null"]
            schema = real[0] if real else options[0]
        else:
            return schema


def _kind(schema: dict) -> str | None:
    """What bad input a value of this schema gets: string, date, date-time, integer, json, or None."""
    kind = schema.get("type")
    if kind == "string":
        return schema.get("format") if schema.get("format") in ("date", "date-time") else "string"
    if kind == "integer":
        return "integer"
    if kind in ("object", None) and "properties" not in schema:
        return "json"  # free-form: any JSON value
    return None  # numbers and booleans take no class of bad input here


@dataclass(frozen=True)
class Leaf:
    path: tuple  # keys, and 0 for the first item of a list
    kind: str

    @property
    def name(self) -> str:
        return [part for part in self.path if isinstance(part, str)][-1]

    @property
    def pattern(self) -> str:
        return ".".join("*" if isinstance(part, int) else part for part in self.path)


def _leaves(schema: dict, path: tuple = ()) -> list[Leaf]:
    schema = _resolve(schema)
    if schema.get("readOnly"):
        return []
    if "properties" in schema:
        return [leaf for name, sub in schema["properties"].items() for leaf in _leaves(sub, (*path, name))]
    if schema.get("type") == "array":
        return _leaves(schema["items"], (*path, 0))
    kind = _kind(schema)
    return [Leaf(path, kind)] if kind else []


def _example(schema: dict) -> Any:
    """A plausible value: the required properties of an object, one item of a list that needs one."""
    schema = _resolve(schema)
    if "properties" in schema:
        return {name: _example(schema["properties"][name]) for name in schema.get("required", [])}
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "array":
        return [_example(schema["items"])] if schema.get("minItems") else []
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if schema.get("maximum", 1) >= 1 else schema["maximum"]
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "string":
        return {
            "email": f"someone-{uuid.uuid4().hex[:8]}@example.org",
            "date-time": (timezone.now() - timedelta(minutes=10)).isoformat(),
            "date": timezone.localdate().isoformat(),
            "uuid": str(uuid.uuid4()),
        }.get(schema.get("format"), "plain text")
    return {}


def _with(body: Any, schema: dict, path: tuple, value: Any) -> Any:
    """A copy of `body` with `value` at `path`, making the containers (from the schema) on the way."""
    body = copy.deepcopy(body)
    if not path:
        return value
    schema = _resolve(schema)
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        item_schema = schema["items"]
        items = body if isinstance(body, list) and body else [_example(item_schema)]
        items[0] = _with(items[0], item_schema, rest, value)
        return items
    body = body if isinstance(body, dict) else {}
    sub = schema["properties"][head]
    body[head] = _with(body.get(head, _example(sub)), sub, rest, value)
    return body


def _operations() -> list:
    found = []
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            found.append(pytest.param(path, method, operation, id=operation["operationId"]))
    return found


OPERATIONS = _operations()


def test_the_schema_has_the_operations_this_module_walks():
    ids = {param.id for param in OPERATIONS}
    assert len(ids) == len(OPERATIONS) > 60
    assert {"auth_login_create", "iot_devices_ingest_create", "fhir_observation_search"} <= ids
    missing = {operation for operation, _ in EXCLUDED_FIELDS} - ids
    assert missing == set(), f"exclusions for operations that no longer exist: {missing}"


# --- The world each operation is tried in ------------------------------------------------------------------


@dataclass
class World:
    patient: Any
    clinician: Any
    staff: Any
    device_key: str

    @classmethod
    def build(cls) -> World:
        patient = UserFactory()
        clinician = ClinicianFactory()
        CareTeamGrantFactory(patient=patient, clinician=clinician)
        _, key = DEVICE_KEY_ACTOR(patient)
        return cls(patient, clinician, UserFactory(role="staff", is_superuser=True), key)

    def client(self, who: str) -> APIClient:
        client = APIClient(raise_request_exception=False)
        if who == "device":
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {self.device_key}")
        elif who in ("patient", "staff"):
            bearer(client, getattr(self, who))
        return client


def _callers(operation: dict, method: str, key: str) -> list[str]:
    if key in STAFF_WRITES and method in WRITE_METHODS:
        return ["staff"]
    security = operation.get("security")
    if not security or all(requirement == {} for requirement in security):
        return ["anonymous"]
    schemes = [name for requirement in security for name in requirement]
    if schemes[0] == "deviceKey" and (method in WRITE_METHODS or "jwtAuth" not in schemes):
        return ["device"]
    return ["patient", "staff"] if method == "get" else ["patient"]


def _resolve_path(path: str):  # noqa: ANN202
    """The schema path resolved with its placeholders filled with anything: a UUID id, else a number (the catalog)."""
    concrete = path.replace("{code}", "x")
    try:
        return resolve(concrete.replace("{id}", str(uuid.UUID(int=1))))
    except Resolver404:
        return resolve(concrete.replace("{id}", "1"))


def _route(path: str) -> tuple[str, dict]:
    """The outsider registry's key and entry for a schema path (its placeholders filled with anything)."""
    match = _resolve_path(path)
    key = f"fhir:{match.url_name}" if "fhir" in match.namespaces else match.url_name
    return key, API_ROUTES.get(key) or DEVICE_KEY_ROUTES.get(key) or STAFF_WRITES.get(key) or {}


def _object_id(path: str, entry: dict, world: World) -> str | None:
    if "{" not in path:
        return None
    if "make" in entry:
        return str(entry["make"](world.patient).pk)
    if "make_staff" in entry:
        return str(entry["make_staff"](world.staff).pk)
    view = _resolve_path(path).func
    view_class = getattr(view, "cls", None)
    queryset = getattr(view_class, "queryset", None)
    if queryset is not None and queryset.model.objects.exists():  # a public object, e.g. the catalog's
        return str(getattr(queryset.first(), getattr(view_class, "lookup_field", "pk")))
    return str(uuid.uuid4())


def _url(path: str, object_id: str | None, query: list[tuple[str, str]] | str = "") -> str:
    if object_id is not None:
        path = path.replace("{id}", object_id).replace("{code}", object_id)
    query = query if isinstance(query, str) else urlencode(query)
    return f"{path}?{query}" if query else path


def _base_body(path: str, operation: dict, entry: dict, world: World) -> Any:
    """A body the operation would take: the outsider registry's (a detail route's `body`, a list's `post`, a
    device route's `body`), else the schema's required fields. The clinician stands in for `post`'s actor, so a
    care-team grant names a real clinician."""
    if "{" in path and "body" in entry:
        return entry["body"]
    if "post" in entry:
        return entry["post"](world.patient, world.clinician)
    if "body" in entry:
        return entry["body"]
    return _example(operation["requestBody"]["content"]["application/json"]["schema"])


def _base_query(operation: dict, entry: dict) -> dict:
    query = dict(entry.get("query", {}))
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter.get("required") and parameter["name"] not in query:
            query[parameter["name"]] = _example(parameter["schema"])
    return query


# --- What the answers must be ------------------------------------------------------------------------------


def _body(response) -> Any:  # noqa: ANN001
    content = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    try:
        return json.loads(content)
    except ValueError:
        return None


def _names(body: Any) -> set[str]:
    """Every field an answer names in an error: `attr` (our shape, and a batch item's) and FHIR's `expression`."""
    found: set[str] = set()
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "attr" and isinstance(value, str):
                found.update(value.split("."))
            elif key == "expression" and isinstance(value, list):
                found.update(part for item in value for part in str(item).split("."))
            else:
                found |= _names(value)
    elif isinstance(body, list):
        for item in body:
            found |= _names(item)
    return found


def _tables() -> list[str]:
    return sorted(name for name in connection.introspection.table_names() if name != "django_migrations")


def _fingerprint(tables: list[str]) -> dict[str, str]:
    """Every row of every table, as one md5 per table (one query), so "nothing stored" covers updates too."""
    parts = [
        f"SELECT '{table}', md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        for table in tables
    ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts))
        return dict(cursor.fetchall())


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(table for table in before if before[table] != after[table])


@dataclass
class Case:
    label: str
    url: str
    body: str | None = None  # JSON text
    field: str | None = None  # the name the answer must give (None: no particular field)
    write: bool = False  # 4xx (or the item's error) naming `field`, and nothing stored
    must_refuse: bool = False  # a query parameter that must be a 400 naming it
    same_as: str | None = None  # a URL whose status this one must answer
    leaf: Leaf | None = None  # the body field the bad value went into
    sent: Any = None  # that value


def _deep_array(levels: int) -> str:
    return "[" * levels + "]" * levels


def _deep_object(levels: int) -> str:
    return '{"a": ' * levels + "{}" + "}" * levels


def _encoded(value: Any) -> str:
    return json.dumps(value)  # ensure_ascii: a lone surrogate is written \ud800, as a client would send it


def _body_values(leaf: Leaf, base: Any) -> list[tuple[str, Any]]:
    if leaf.kind == "json":
        return [
            ("nul-in-json-value", {"key": f"a{NUL}b"}),
            ("nul-in-json-key", {f"a{NUL}b": 1}),
            ("surrogate-in-json-value", {"key": [f"a{SURROGATE}b"]}),
            ("surrogate-in-json-key", {f"a{SURROGATE}b": 1}),
        ]
    if leaf.kind == "integer":
        return [(f"integer-{value}", value) for value in BIG_INTEGERS]
    text = base if isinstance(base, str) and base else "plain text"
    values = [("nul", text[:1] + NUL + text[1:]), ("surrogate", text[:1] + SURROGATE + text[1:])]
    if leaf.kind == "date-time":
        values += [(f"datetime-{value}", value) for value in BAD_DATETIMES]
    if leaf.kind == "date":
        values += [(f"date-{value}", value) for value in BAD_DATES]
    return values


def _leaf_value(body: Any, path: tuple) -> Any:
    for part in path:
        if isinstance(body, dict) and part in body or isinstance(body, list) and isinstance(part, int) and body:
            body = body[part]
        else:
            return None
    return body


def _body_cases(operation: dict, url: str, base: Any) -> list[Case]:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    first = next(iter(_resolve(schema).get("properties", {})), None)
    cases = [
        Case("deep-body", url, _deep_array(DEEP), None, write=True),
        Case("nested-body", url, _deep_array(NESTED), None, write=True),
    ]
    if first:
        deep_value = f'{{"{first}": {_deep_array(DEEP)}}}'
        nested_value = f'{{"{first}": {_deep_object(NESTED)}}}'
        cases += [
            Case(f"deep-value-of-{first}", url, deep_value, first, write=True),
            Case(f"nested-value-of-{first}", url, nested_value, first, write=True),
        ]
    excluded = {pattern for operation_id, pattern in EXCLUDED_FIELDS if operation_id == operation["operationId"]}
    for leaf in _leaves(schema):
        if any(leaf.pattern == pattern or leaf.pattern.startswith(pattern + ".") for pattern in excluded):
            continue
        for label, value in _body_values(leaf, _leaf_value(base, leaf.path)):
            body = _with(base, schema, leaf.path, value)
            case = Case(f"{label} in {leaf.pattern}", url, _encoded(body), leaf.name, write=True, leaf=leaf, sent=value)
            cases.append(case)
    return cases


def _query_values(schema: dict) -> list[tuple[str, str, bool]]:
    """(label, the value already percent-encoded, whether it must be refused)."""
    schema = _resolve(schema.get("items", schema) if schema.get("type") == "array" else schema)
    kind = _kind(schema) or "string"
    values = [("nul", quote(f"a{NUL}b"), False), ("surrogate-bytes", f"a{SURROGATE_BYTES}b", False)]
    if kind in ("string", "date-time"):
        values += [(f"datetime-{v}", quote(v), kind == "date-time") for v in BAD_DATETIMES]
    if kind in ("string", "date"):
        values += [(f"date-{v}", quote(v), kind == "date") for v in BAD_DATES]
    if kind == "string":
        values += [(f"fhir-date-{v}", quote(v), False) for v in FHIR_DATES]
    values += [(f"integer-{v}", str(v), False) for v in BIG_INTEGERS]
    return values


def _query_cases(operation: dict, path: str, object_id: str | None, base: dict) -> list[Case]:
    cases = []
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            for label, value, _ in _query_values({"type": "string"}):
                url = _url(path.replace("{" + name + "}", value), None, urlencode(base))
                cases.append(Case(f"{label} in path {name}", url))
            continue
        if parameter["in"] != "query":
            continue
        others = urlencode({key: value for key, value in base.items() if key != name})
        for label, value, must_refuse in _query_values(parameter["schema"]):
            query = "&".join(part for part in (others, f"{quote(name)}={value}") if part)
            case = Case(f"{label} in ?{name}", _url(path, object_id, query), field=name, must_refuse=must_refuse)
            if name == "page" and label.startswith("integer-") and not value.startswith("-"):
                past_end = "&".join(part for part in (others, "page=999") if part)
                case.same_as = _url(path, object_id, past_end)
            cases.append(case)
    return cases


NOT_READ_BACK = object()


def _check(case: Case, response, body: Any, changed: list[str], same_as: int | None, now: Any) -> str | None:  # noqa: ANN001
    """What is wrong with the answer to a case, or None. `now`: the field's value read back after a PATCH."""
    status = response.status_code
    if status >= 500:
        return f"{status}"
    if same_as is not None and status != same_as:
        return f"{status}, where a page past the end answers {same_as}"
    if now is not NOT_READ_BACK:
        # A PATCH that ignores the field (read-only once the object exists) may apply the rest of its body;
        # the bad value must not have stuck.
        return f"{status}: the field now holds the bad value {case.sent!r}" if now == case.sent else None
    if case.write:
        named = case.field is None or case.field in _names(body)
        if not (400 <= status < 500 or 200 <= status < 300 and case.field in _names(body)):
            return f"{status}: stored or accepted, not refused"
        if not named:
            return f"{status} without naming {case.field!r}: {str(body)[:300]}"
        if changed:
            return f"{status}, but these tables changed: {changed}"
    if case.must_refuse and not (status == 400 and case.field in _names(body)):
        return f"{status}, not a 400 naming {case.field!r}: {str(body)[:300]}"
    if status == 400 and case.field and case.field not in _names(body):
        return f"400 without naming {case.field!r}: {str(body)[:300]}"
    return None


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS)
def test_bad_input_is_refused_and_stores_nothing(path, method, operation, settings):
    settings.AUTH_THROTTLE_RATES = {"auth_ip": "100000/min", "auth_account": "100000/min"}  # the cases are many
    settings.PHONE_THROTTLE_RATES = dict.fromkeys(settings.PHONE_THROTTLE_RATES, "100000/min")
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the registry's webhook URL is on loopback
    world = World.build()
    key, entry = _route(path)
    object_id = _object_id(path, entry, world)
    url = _url(path, object_id, urlencode(_base_query(operation, entry)))
    tables = _tables()
    failures = []

    for caller in _callers(operation, method, key):
        client = world.client(caller)
        cases = _query_cases(operation, path, object_id, _base_query(operation, entry))
        if caller != "staff" or key in STAFF_WRITES:
            if method in WRITE_METHODS and "requestBody" in operation:
                cases = _body_cases(operation, url, _base_body(path, operation, entry, world)) + cases
            else:
                cases = [Case("deep-body", url, _deep_array(DEEP))] + cases
        for case in cases:
            before = _fingerprint(tables) if case.write else {}
            response = client.generic(method.upper(), case.url, case.body or "", content_type="application/json")
            try:
                body = _body(response)
            except Exception as exc:  # noqa: BLE001 - a streamed answer that breaks is a 500 by another name
                failures.append(f"{caller} {method.upper()} {case.label}: raised while streaming: {exc!r}")
                continue
            changed = _changed(before, _fingerprint(tables)) if case.write else []
            same_as = getattr(client, method)(case.same_as).status_code if case.same_as else None
            now = NOT_READ_BACK
            if method == "patch" and case.leaf and 200 <= response.status_code < 300 and case.field not in _names(body):
                now = _leaf_value(_body(client.get(case.url)), case.leaf.path)
            problem = _check(case, response, body, changed, same_as, now)
            if problem:
                failures.append(f"{caller} {method.upper()} {case.label}: {problem}")

    assert failures == [], f"{method.upper()} {path} ({key}):\n" + "\n".join(failures)
