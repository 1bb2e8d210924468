"""The one seam through which health alerts leave this app.

Every alert that opens, escalates or resolves goes through `emit_alert_event`. Until the notifications app
exists it writes one structured log line (JSON, with the request or task id); notifications will route from
here to in-app, email, push and webhooks, so nothing else in health_metrics has to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from .models import HealthAlert

logger = structlog.get_logger("openvitals.alerts")


def emit_alert_event(*, alert: HealthAlert, event: str) -> None:
    logger.info(
        "health_alert",
        event_type=event,
        alert_id=str(alert.pk),
        patient_id=str(alert.user_id),
        metric_type=alert.metric_type_id,
        severity=alert.severity,
        direction=alert.direction,
        status=alert.status,
    )
