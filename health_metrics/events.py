"""The one seam through which health alerts leave this app.

Every alert that opens, escalates, is acknowledged or resolves goes through `emit_alert_event`: one
structured log line (JSON, with the request or task id) and, for all but acknowledgement, one `notify()` to the
patient and every clinician whose grant covers the metrics scope. A critical alert is a kind nobody can mute
and it escalates until acknowledged or resolved (notifications/escalation.py); texts outside the app (push,
SMS, an email's subject) never carry the value (notifications/kinds.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from accounts.models import Scope
from notifications import escalation
from notifications.models import EscalationStatus
from notifications.services import notify

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
    if event == "acknowledged":  # someone has it in hand: a critical alert stops escalating
        escalation.close(
            subject=escalation.subject_for("health_alert_critical", {"alert_id": str(alert.pk)}, ""),
            status=EscalationStatus.ACKNOWLEDGED,
            by=alert.acknowledged_by,
        )
        return
    if event == "resolved":
        escalation.close(
            subject=escalation.subject_for("health_alert_critical", {"alert_id": str(alert.pk)}, ""),
            status=EscalationStatus.RESOLVED,
        )
        kind = "health_alert_resolved"
    else:
        kind = "health_alert_critical" if alert.severity == "critical" else "health_alert"
    notify(
        kind,
        patient=alert.user,
        scope=Scope.METRICS,
        payload={
            "metric": alert.metric_type.display_name,
            "message": alert.message,
            "alert_id": str(alert.pk),
        },
        dedupe_key=f"health_alert:{alert.pk}:{event}:{alert.severity}",
    )
