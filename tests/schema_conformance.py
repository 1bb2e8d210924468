"""Every response the test suite gets from the API is checked against the OpenAPI document (issue #11 §1).

The root conftest wraps Django's test client (and so DRF's APIClient): each response to a path the document
describes must have a documented status code and content type, and its JSON body must be valid against the
documented schema (openapi-schema-validator, the maintained OpenAPI 3.0 validator, in its read mode: a
`writeOnly` field in a response is a violation), formats included (`date-time`, `date`, `uuid`, `email`, and
`uri` as schemathesis reads it: an empty string is not a URI). A shape that drifts from the document fails the test that
got it, at the request.

The document is the one `/api/schema/` serves, generated once per test process. Paths the document does not
describe (the admin, health checks, the docs) are not checked; an undocumented path under /api/v1/ that
answers anything but an error is a violation. A test that must see an undocumented answer (one sending a
content type the API refuses, say) opts out with `@pytest.mark.no_schema_check`.

`SCHEMA_CONFORMANCE=report:<file>` records violations as JSON lines instead of failing (to survey them).
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from openapi_schema_validator import OAS30ReadValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = "urn:openvitals:openapi"
METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


class SchemaViolation(AssertionError):
    pass


@cache
def document() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return _nullable_wraps(SchemaGenerator().get_schema(request=None, public=True))


def _nullable_wraps(node: Any) -> Any:
    """`nullable: true` beside `allOf`/`anyOf` and no `type` (how drf-spectacular marks a nullable nested object)
    admits null, as schemathesis and client generators read it; OpenAPI 3.0's validators only honour it beside
    `type`, so the copy checked here says it with an `anyOf`."""
    if isinstance(node, list):
        return [_nullable_wraps(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_wraps(value) for key, value in node.items()}
    if node.get("nullable") is True and "type" not in node and ({"allOf", "anyOf", "oneOf", "$ref"} & node.keys()):
        inner = {key: value for key, value in node.items() if key != "nullable"}
        return {"anyOf": [inner, {"type": "object", "nullable": True, "enum": [None]}]}
    return node


def _response(documented: str, method: str, status: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The documented response and its JSON pointer parts, following a shared response's reference."""
    response = document()["paths"][documented][method]["responses"][status]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[1]
        return document()["components"]["responses"][name], ("components", "responses", name)
    return response, ("paths", documented, method, "responses", status)


@cache
def operations() -> list[tuple[re.Pattern[str], int, str]]:
    """(pattern, number of parameters, documented path), the most literal paths first."""
    compiled = []
    for path in document()["paths"]:
        pattern = "[^/]+".join(re.escape(literal) for literal in re.split(r"\{[^}]+\}", path))
        compiled.append((re.compile(f"^{pattern}$"), path.count("{"), path))
    return sorted(compiled, key=lambda item: item[1])


def find_operation(path: str, method: str) -> tuple[str, dict[str, Any]] | None:
    for pattern, _, documented in operations():
        if pattern.match(path):
            operation = document()["paths"][documented].get(method)
            if operation is not None:
                return documented, operation
    return None


@cache
def registry() -> Registry:
    return Registry().with_resource(ROOT, Resource.from_contents(document(), default_specification=DRAFT4))


FORMATS = copy.deepcopy(OAS30ReadValidator.FORMAT_CHECKER)


@FORMATS.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    """An absolute URI (scheme and a host or a path), as schemathesis checks `format: uri`."""
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


@cache
def validator_for(documented: str, method: str, status: str, media_type: str) -> OAS30ReadValidator | None:
    response, parts = _response(documented, method, status)
    if "schema" not in response.get("content", {}).get(media_type, {}):
        return None
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in (*parts, "content", media_type, "schema"))
    # Every reference (#/components/...) resolves inside the whole document.
    return OAS30ReadValidator({"$ref": f"{ROOT}#/{pointer}"}, registry=registry(), format_checker=FORMATS)


def describes(path: str) -> bool:
    return path.startswith("/api/v1/") or path.startswith("/fhir/")


def check(method: str, path: str, response: Any) -> list[str]:
    """The ways `response` breaks the document (empty when it conforms)."""
    method = method.lower()
    if method not in METHODS or not describes(path) or method in {"head", "options"}:
        return []
    found = find_operation(path, method)
    status = response.status_code
    if found is None:
        if status >= 400:  # an unknown path or a method the path does not take: any error is right
            return []
        return [f"{method.upper()} {path} answered {status} but the document has no such operation"]
    documented, operation = found
    responses = operation.get("responses", {})
    key = str(status) if str(status) in responses else ("default" if "default" in responses else None)
    if key is None and 300 <= status < 400:
        return []  # a redirect (to HTTPS, say) is the deployment's, not the operation's
    if key is None:
        return [f"{method.upper()} {documented}: status {status} is not documented ({', '.join(sorted(responses))})"]
    content = _response(documented, method, key)[0].get("content")
    media_type = (response.get("Content-Type") or "").split(";")[0].strip()
    if not content:
        if status != 204 and response.get("Content-Type") and _has_body(response):
            return [f"{method.upper()} {documented} {status}: a body ({media_type}) where the document has none"]
        return []
    if not any(_media_matches(media_type, documented_type) for documented_type in content):
        return [f"{method.upper()} {documented} {status}: content type {media_type!r} is not one of {sorted(content)}"]
    if not (media_type == "application/json" or media_type.endswith("+json")) or response.streaming:
        return []  # a file (read by the test itself) is checked by its own test
    validator = validator_for(documented, method, key, media_type if media_type in content else next(iter(content)))
    if validator is None:
        return []
    body = json.loads(response.content or b"null")
    return [
        f"{method.upper()} {documented} {status}: {error.message[:300]} at {'/'.join(map(str, error.absolute_path))}"
        for error in validator.iter_errors(body)
    ][:5]


def _has_body(response: Any) -> bool:
    return bool(getattr(response, "streaming", False) or response.content)


def _media_matches(actual: str, documented: str) -> bool:
    if documented in {"*/*", actual}:
        return True
    major, _, minor = documented.partition("/")
    return minor == "*" and actual.startswith(f"{major}/")


def record(method: str, path: str, response: Any, test: str) -> None:
    problems = check(method, path, response)
    if not problems:
        return
    mode = os.environ.get("SCHEMA_CONFORMANCE", "")
    if mode.startswith("report:"):
        with open(mode.removeprefix("report:"), "a") as sink:
            for problem in problems:
                sink.write(json.dumps({"test": test, "problem": problem}) + "\n")
        return
    raise SchemaViolation("the response breaks the OpenAPI document:\n  " + "\n  ".join(problems))
