"""Structured JSON logs: one object per line, each carrying the request id.

django-structlog's RequestMiddleware binds `request_id` into structlog's context
variables; the `merge_contextvars` processor below copies it into every line, including
lines from the standard library's loggers (Django, Celery, our own `logging` calls).
"""

from __future__ import annotations

import re
from typing import Any

import structlog

# Secrets that travel in a URL's query string (the calendar feed's `?token=`, which calendar apps cannot send in a
# header): django-structlog logs each request's full path, so their values are replaced before any line is written.
_SECRET_QUERY = re.compile(r"([?&;](?:token|access_token|refresh_token)=)[^&;\s\"']*", re.IGNORECASE)


def redact_query_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: `token=<secret>` in any top-level string value becomes `token=[redacted]`."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "=" in value:
            event_dict[key] = _SECRET_QUERY.sub(r"\1[redacted]", value)
    return event_dict


_shared_processors: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    redact_query_secrets,
]

structlog.configure(
    processors=[
        *_shared_processors,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def build_logging(*, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
                "foreign_pre_chain": _shared_processors,
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Replaces Django's plain-text console logging (DEBUG only) with ours.
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            # Both log after the request's context is gone, so without its id; django-structlog's
            # request_finished / request_failed lines say the same with the id.
            "django.request": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "django.server": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "axes": {"level": "WARNING"},
        },
    }
