"""Structured JSON logs: one object per line, each carrying the request id.

django-structlog's RequestMiddleware binds `request_id` into structlog's context
variables; the `merge_contextvars` processor below copies it into every line, including
lines from the standard library's loggers (Django, Celery, our own `logging` calls).
"""

from __future__ import annotations

from typing import Any

import structlog

_shared_processors: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
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
