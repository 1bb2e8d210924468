"""Every kind of notification, in one place: its severity, default channels, whether a person may mute it,
and its texts.

Texts are `str.format` templates over the payload that `notify()` is given. `title` and `body` are shown in the
app's inbox, behind the person's login. `neutral` is what a lock screen, a text message or an email subject
shows: never a health value or a diagnosis (a lock screen is public); the app opens the detail.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Channel, Severity


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    severity: str
    channels: tuple[str, ...]  # on unless the person turns them off
    mutable: bool
    title: str
    body: str
    neutral: str
    # A critical alert that must be acknowledged: unacknowledged, it escalates (escalation.py), and patients
    # who opted in have their emergency contacts emailed.
    escalates: bool = False

    def render(self, template: str, payload: dict) -> str:
        try:
            return template.format(**payload)
        except (KeyError, IndexError, ValueError):  # a payload without a field a text names: the neutral text
            return self.neutral


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.code in KINDS:
        raise ValueError(f"notification kind {kind.code!r} is registered twice")
    KINDS[kind.code] = kind
    return kind


def get(code: str) -> Kind:
    try:
        return KINDS[code]
    except KeyError:
        raise ValueError(f"unknown notification kind {code!r}; known: {', '.join(sorted(KINDS))}") from None


ALL = (Channel.IN_APP, Channel.EMAIL, Channel.PUSH, Channel.SMS)

register(
    Kind(
        "health_alert_critical",
        "Critical health alert",
        Severity.CRITICAL,
        ALL,
        mutable=False,
        title="Critical: {metric}",
        body="{message}",
        neutral="OpenVitals: an urgent health alert needs your attention. Open the app.",
        escalates=True,
    )
)
register(
    Kind(
        "health_alert_escalated",
        "Critical alert not acknowledged",
        Severity.CRITICAL,
        ALL,
        mutable=False,
        title="Unacknowledged critical alert: {metric} for {patient_name}",
        body="{message} Nobody has acknowledged it for {minutes} minutes.",
        neutral="OpenVitals: an urgent patient alert has not been acknowledged. Open the app.",
    )
)
register(
    Kind(
        "health_alert",
        "Health alert",
        Severity.WARNING,
        (Channel.IN_APP, Channel.PUSH),
        mutable=True,
        title="Alert: {metric}",
        body="{message}",
        neutral="OpenVitals: you have a new health alert.",
    )
)
register(
    Kind(
        "health_alert_resolved",
        "Health alert resolved",
        Severity.INFO,
        (Channel.IN_APP,),
        mutable=True,
        title="Back in range: {metric}",
        body="{message}",
        neutral="OpenVitals: a health alert has cleared.",
    )
)
register(
    Kind(
        "device_alert",
        "Device alert",
        Severity.WARNING,
        (Channel.IN_APP, Channel.PUSH),
        mutable=True,
        title="{device}: {message}",
        body="{message}",
        neutral="OpenVitals: one of your devices needs attention.",
    )
)
register(
    Kind(
        "care_team_granted",
        "Care-team access granted",
        Severity.INFO,
        (Channel.IN_APP, Channel.EMAIL),
        mutable=True,
        title="{patient_name} shared their record with you",
        body="Scopes: {scopes}.",
        neutral="OpenVitals: a patient shared their record with you.",
    )
)
register(
    Kind(
        "care_team_revoked",
        "Care-team access revoked",
        Severity.INFO,
        (Channel.IN_APP, Channel.EMAIL),
        mutable=True,
        title="{patient_name} ended your access to their record",
        body="You no longer see their data.",
        neutral="OpenVitals: a patient ended your access to their record.",
    )
)
register(
    Kind(
        "export_failed",
        "Export failed",
        Severity.INFO,
        (Channel.IN_APP, Channel.EMAIL),
        mutable=True,
        title="Your export could not be made",
        body="{reason}",
        neutral="OpenVitals: an export you asked for could not be made.",
    )
)
register(
    Kind(
        "message",
        "Message from your clinician",
        Severity.INFO,
        (Channel.IN_APP, Channel.PUSH, Channel.EMAIL),
        mutable=True,
        title="Message from {sender_name}",
        body="{text}",
        neutral="OpenVitals: you have a new message from your care team.",
    )
)
register(
    Kind(
        "webhook_disabled",
        "Webhook disabled",
        Severity.WARNING,
        (Channel.IN_APP, Channel.EMAIL),
        mutable=False,
        title="A webhook subscription was turned off",
        body="Deliveries to {url} kept failing ({reason}), so it was turned off. Fix the endpoint, then turn it on.",
        neutral="OpenVitals: one of your webhook subscriptions was turned off. Open OpenVitals to check it.",
    )
)
