"""The OpenAPI document's finishing pass (a drf-spectacular postprocessing hook).

drf-standardized-errors documents every operation's errors with components of its own (an enum of the
fields and codes of each operation: 378 components, a 1.2 MB document). Clients handle one error shape
(API.md), so every error response here refers to one shared component instead: `ErrorResponse` under
/api/, `OperationOutcome` under /fhir/. The pass also documents the errors any operation can answer that
the generator cannot see (413 and 415 for a body, 401 where a token is needed, 404 where the path names an
object, 429 where the operation is throttled), gives each operation a summary, and drops the components
nothing refers to any more.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

ERROR_DESCRIPTIONS = {
    "400": "Bad input: each entry of `errors` names the field (`attr`) and why (`code`, `detail`).",
    "401": "No valid credentials: the token or device key is missing, expired, revoked or of the wrong type.",
    "403": "Signed in, but this role may not do this.",
    "404": "No such object, or it belongs to someone the caller may not see.",
    "405": "The path does not take this method.",
    "406": "The server cannot answer in a media type the client accepts.",
    "409": "The request conflicts with the current state (`code` says how).",
    "410": "The object existed but is gone.",
    "422": "The request is well formed but cannot be applied (`code` says why).",
    "413": "The request body is larger than the limit.",
    "415": "The request body is not JSON.",
    "429": "Too many requests: wait `Retry-After` seconds.",
    "500": "The server failed; `request_id` finds it in the logs.",
}

ERROR_RESPONSE = {
    "type": "object",
    "description": "The one error shape of the API (API.md).",
    "properties": {
        "type": {"type": "string", "enum": ["validation_error", "client_error", "server_error"]},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "Machine-readable, e.g. `required`, `invalid_choice`."},
                    "detail": {"type": "string", "description": "For people; names the valid choices where any."},
                    "attr": {
                        "type": "string",
                        "nullable": True,
                        "description": "The field or parameter at fault (dotted for nested items), or null.",
                    },
                },
                "required": ["code", "detail", "attr"],
            },
        },
        "request_id": {"type": "string", "description": "The id of this request in the server's logs."},
    },
    "required": ["type", "errors"],
}

OPERATION_OUTCOME = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome: what went wrong, one `issue` per problem.",
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["severity", "code"],
            },
        },
    },
    "required": ["resourceType", "issue"],
}

BODY_METHODS = {"post", "put", "patch"}
# Errors that only some operations answer, which the generator cannot see (services raise them).
OPERATION_ERRORS = {
    ("/api/v1/care-team/", "post"): {"409": "An open grant to this clinician exists: revoke it first."},
    ("/api/v1/iot-devices/ingest/", "post"): {
        "422": "The batch id was received before with different readings (`batch_id_reused`)."
    },
}


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorResponse"] = ERROR_RESPONSE
    schemas["OperationOutcome"] = OPERATION_OUTCOME
    every = [
        (path, method, operation)
        for path, operations in result.get("paths", {}).items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "responses" in operation
    ]
    firsts = Counter(_first_sentence(operation) for _, _, operation in every)
    shared = {first for first, count in firsts.items() if count > 1}
    for path, method, operation in every:
        _summarise(operation, method, path, shared)
        _document_errors(operation, method, path, result["components"], fhir=path.startswith("/fhir/"))
    _any_of_for_one_of(result)
    _drop_unreferenced(result)
    return result


def _any_of_for_one_of(node: Any) -> None:
    """`oneOf` without a discriminator becomes `anyOf`: the generator's branches may overlap (a blank email
    matches both "an email or blank" branches), which makes `oneOf` refuse valid data."""
    if isinstance(node, dict):
        if "oneOf" in node and "discriminator" not in node:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _any_of_for_one_of(value)
    elif isinstance(node, list):
        for value in node:
            _any_of_for_one_of(value)


def _document_errors(
    operation: dict[str, Any], method: str, path: str, components: dict[str, Any], *, fhir: bool
) -> None:
    responses = operation["responses"]
    secured = any(requirement for requirement in operation.get("security", []) if requirement)
    if method in BODY_METHODS and "requestBody" in operation:
        responses.setdefault("413", {})
        responses.setdefault("415", {})
    if secured or not fhir:  # a bad token is refused even where none is needed
        responses.setdefault("401", {})
    if secured and not fhir:
        responses.setdefault("403", {})
    for status, description in OPERATION_ERRORS.get((path, method), {}).items():
        responses.setdefault(status, {"description": description})
    if "{" in path:
        responses.setdefault("404", {})
    if fhir:
        responses.pop("405", None)
        responses.pop("406", None)
    shared = components.setdefault("responses", {})
    for status, response in list(responses.items()):
        if not status.isdigit() or int(status) < 400:
            continue
        prefix, media, schema = (
            ("Fhir", "application/fhir+json", "OperationOutcome") if fhir else ("", "application/json", "ErrorResponse")
        )
        content = {media: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
        default = ERROR_DESCRIPTIONS.get(status, "An error.")
        description = response.get("description") or default
        if description != default:  # said of this operation only: kept beside it
            responses[status] = {"description": description, "content": content}
            continue
        name = f"{prefix}Error{status}"
        shared.setdefault(name, {"description": default, "content": content})
        responses[status] = {"$ref": f"#/components/responses/{name}"}
    operation["responses"] = dict(sorted(responses.items()))


# What the collections are called in summaries (plural, singular), by their path under /api/v1/.
NOUNS = {
    "health-metrics": ("readings", "reading"),
    "health-metrics/targets": ("targets", "target"),
    "health-metrics/sources": ("data sources", "data source"),
    "health-metrics/alerts": ("health alerts", "health alert"),
    "health-metrics/alert-rules": ("alert rules", "alert rule"),
    "health-metrics/exports": ("export jobs", "export job"),
    "health-metrics/metric-types": ("metric types", "metric type"),
    "iot-devices": ("devices", "device"),
    "iot-devices/alerts": ("device alerts", "device alert"),
    "iot-devices/ingest": ("device batches", "device batch"),
    "care-team": ("care-team grants", "care-team grant"),
    "patients": ("consented patients", "patient"),
    "access-log": ("access-log entries", "access-log entry"),
}
# Operations whose path says little by itself, by path and method.
SUMMARIES = {
    ("/api/v1/auth/current-user/", "get"): "The signed-in user, role and permissions",
    ("/api/v1/auth/profile/", "get"): "Read the signed-in user's profile",
    ("/api/v1/auth/profile/", "patch"): "Change the signed-in user's profile",
    ("/api/v1/auth/register/", "post"): "Sign up as a patient",
    ("/api/v1/health-metrics/export/", "get"): "Export readings (CSV, PDF or FHIR), inline or as a job",
    ("/api/v1/health-metrics/exports/{id}/download/", "get"): "Download an export job's file",
    ("/api/v1/health-metrics/health-score/", "get"): "Daily health scores",
    ("/api/v1/health-metrics/stats/", "get"): "Statistics per metric type over recent days",
    ("/api/v1/iot-devices/{id}/batches/", "get"): "A device's ingestion history",
    ("/api/v1/iot-devices/{id}/rotate-key/", "post"): "Rotate a device's API key",
    ("/api/v1/iot-devices/alerts/{id}/acknowledge/", "post"): "Acknowledge a device alert",
    ("/api/v1/iot-devices/stats/", "get"): "Device totals",
    ("/fhir/r4/Observation", "get"): "Search Observations",
    ("/fhir/r4/Patient/{id}", "get"): "Read a Patient",
}
VERBS = {"post": "Create", "put": "Replace", "patch": "Change", "delete": "Delete"}


def _summarise(operation: dict[str, Any], method: str, path: str, shared: set[str]) -> None:
    """A short summary: the description's first sentence where it is this operation's own, else one made
    from the method and the collection (a viewset's docstring describes all its operations alike)."""
    if operation.get("summary"):
        return
    if (path, method) in SUMMARIES:
        operation["summary"] = SUMMARIES[path, method]
        return
    first = _first_sentence(operation)
    if first and first not in shared and len(first) <= 90:
        operation["summary"] = first
        return
    parts = [part for part in path.removeprefix("/api/v1/").split("/") if part]
    by_id = bool(parts) and parts[-1].startswith("{")
    collection = "/".join(part for part in parts if not part.startswith("{"))
    plural, singular = NOUNS.get(collection, (collection.replace("/", " ").replace("-", " "), ""))
    if method == "get":
        summary = f"Read {_a(singular)}" if by_id and singular else f"List {plural}"
    elif method == "post" and not by_id and singular:
        summary = f"Create {_a(singular)}"
    else:
        summary = f"{VERBS.get(method, method.upper())} {_a(singular) if singular else plural}"
    operation["summary"] = summary


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _first_sentence(operation: dict[str, Any]) -> str:
    description = (operation.get("description") or "").strip()
    return re.split(r"(?<=[.!?])\s|\n", description, maxsplit=1)[0].strip().rstrip(".") if description else ""


def _drop_unreferenced(result: dict[str, Any]) -> None:
    schemas = result["components"]["schemas"]
    reachable: set[str] = set()
    pending = [result["paths"], result["components"].get("responses", {})]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, str) and node.startswith("#/components/schemas/"):  # a $ref or a discriminator's
            name = node.rsplit("/", 1)[1]
            if name not in reachable and name in schemas:
                reachable.add(name)
                pending.append(schemas[name])
    for name in list(schemas):
        if name not in reachable:
            del schemas[name]
