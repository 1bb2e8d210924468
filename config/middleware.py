"""Request plumbing that sits in front of the views."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from .api import current_request_id, error_body


class RequestIdHeaderMiddleware:
    """Echo the request id (bound by django-structlog's RequestMiddleware) as X-Request-ID."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        request_id = current_request_id()
        if request_id:
            response["X-Request-ID"] = request_id
        return response


class AfterTransactionMiddleware:
    """Run the work a view deferred until its transaction (ATOMIC_REQUESTS) has ended, committed or rolled back.

    A view's error rolls its transaction back, and with it any row written there; what must be kept even
    then (the access-log row of a refused write) is appended to `request.after_transaction` and written here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.after_transaction = []
        response = self.get_response(request)
        for work in request.after_transaction:
            work()
        return response


class BodySizeLimitMiddleware:
    """Answer 413 before reading a body larger than the view allows.

    The limit is API_MAX_BODY_BYTES, or the view class's `max_body_bytes` for endpoints
    that take large uploads. Django's own DATA_UPLOAD_MAX_MEMORY_SIZE only guards
    `request.body`, not the stream DRF's parsers read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:  # noqa: ANN001
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = getattr(view_class, "max_body_bytes", settings.API_MAX_BODY_BYTES)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            body = error_body(
                status_type="client_error",
                code="request_too_large",
                detail=f"The request body is {length} bytes; the limit here is {limit}.",
            )
            return JsonResponse(body, status=413)
        return None


class NoStoreMiddleware:
    """`Cache-Control: no-store` (and the rest of Django's never-cache headers) on every /api/ and /fhir/ answer.

    They carry health data (readings, FHIR resources, export files), which no browser, proxy or app cache
    may keep; a view's own Cache-Control is replaced, not merged.
    """

    PREFIXES = ("/api/", "/fhir/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self.PREFIXES):
            del response["Cache-Control"]
            add_never_cache_headers(response)
        return response
