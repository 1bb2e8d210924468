"""Liveness and readiness, built on django-health-check's checks."""

from __future__ import annotations

import asyncio
import dataclasses

from django.conf import settings
from django.http import JsonResponse
from django.views import View
from health_check.base import HealthCheck
from health_check.checks import Cache, Database, Storage
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


class LivenessView(View):
    """The process is up and serving; nothing else is checked."""

    def get(self, request, *args, **kwargs):  # noqa: ANN001
        return JsonResponse({"status": "ok"})


@dataclasses.dataclass
class Broker(HealthCheck):
    """Celery's broker accepts a connection (skipped when tasks run eagerly, in-process)."""

    def run(self) -> None:
        from config.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # kombu raises many kinds; all mean "down"
            raise ServiceUnavailable("Cannot connect to the broker") from exc


class ReadinessView(HealthCheckView):
    """Database, cache, broker and storage; 503 naming each one that is down."""

    names = {Database: "database", Cache: "cache", Broker: "broker", Storage: "storage"}

    @property
    def checks(self):  # noqa: ANN201
        checks = [Database, Cache, Storage]
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            checks.append(Broker)
        return checks

    async def get(self, request, *args, **kwargs):  # noqa: ANN001
        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        report = {
            self.names[type(result.check)]: "ok" if result.error is None else str(result.error) for result in results
        }
        down = sorted(name for name, state in report.items() if state != "ok")
        body = {"status": "unavailable" if down else "ok", "down": down, "checks": report}
        return JsonResponse(body, status=503 if down else 200)
