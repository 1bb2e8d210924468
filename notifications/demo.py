"""Demo data for notifications (settings.DEMO_SEEDERS): each demo organization's escalation policy, with the demo
staff on call, so the escalation of a critical alert can be followed in the admin."""

from __future__ import annotations

from accounts.models import Organization, Role, User

from .models import EscalationPolicy

DEMO_MINUTES = {"Riverside General Hospital": 10, "Harbor Family Clinic": 15}


def seed_demo_escalation(*, stdout) -> None:  # noqa: ANN001
    staff = list(User.objects.filter(role=Role.STAFF, email__endswith="@openvitals.local"))
    made = 0
    for organization in Organization.objects.filter(name__in=DEMO_MINUTES):
        policy, created = EscalationPolicy.objects.get_or_create(
            organization=organization, defaults={"minutes": DEMO_MINUTES[organization.name]}
        )
        if created:
            policy.on_call.add(*staff)
        made += created
    stdout.write(f"  escalation policies: {made} created (on call: {', '.join(u.email for u in staff) or 'nobody'})")
