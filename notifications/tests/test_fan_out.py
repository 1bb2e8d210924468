"""One event to many people: from services.COPY_FROM rows on, notify() writes with COPY. The same guarantees hold."""

import uuid

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from notifications import services
from notifications.models import Delivery, Notification, Preference

pytestmark = pytest.mark.django_db

CRITICAL = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "c1"}
MANY = services.COPY_FROM + 10


@pytest.fixture
def care_team(user):
    clinicians = [ClinicianFactory(email=f"dr{n}@example.org") for n in range(MANY)]
    for clinician in clinicians:
        CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    return clinicians


def test_a_large_fan_out_tells_everyone_once_on_every_channel(user, care_team, django_capture_on_commit_callbacks):
    Preference.objects.create(user=care_team[0], kind="health_alert_critical", channel="email", enabled=False)

    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
        told = services.notify(
            "health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1:opened"
        )
        again = services.notify(
            "health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1:opened"
        )

    assert again == []
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT") and "notifications_notification" in q["sql"]]
    assert inserts == []  # written by COPY, which the query log does not show
    assert len(told) == MANY + 1
    stored = Notification.objects.filter(kind="health_alert_critical")
    assert stored.count() == MANY + 1
    assert set(stored.values_list("title", flat=True)) == {"Critical: Blood glucose"}
    assert set(stored.values_list("patient_id", flat=True)) == {user.pk}
    assert Delivery.objects.filter(notification__in=stored).count() == 3 * (MANY + 1)  # email, push, SMS each
    # A critical kind cannot be muted, so the one who turned email off still gets it: one email per person.
    assert sorted(m.to[0] for m in mail.outbox) == sorted([user.email, *(c.email for c in care_team)])
    assert set(Delivery.objects.filter(channel="email").values_list("status", flat=True)) == {"sent"}


def test_a_racing_twin_loses_only_the_rows_it_already_stored(user, care_team):
    now = timezone.now()
    rows = [
        Notification(id=uuid.uuid4(), recipient_id=c.pk, kind="health_alert", title="t", dedupe_key="k", created_at=now)
        for c in care_team
    ]
    twin = rows[3]
    Notification.objects.create(recipient_id=twin.recipient_id, kind="health_alert", title="t", dedupe_key="k")

    stored = services._store_notifications(rows, dedupe=True)

    assert len(stored) == MANY - 1
    assert twin.recipient_id not in {row.recipient_id for row in stored}
    assert Notification.objects.filter(kind="health_alert", dedupe_key="k").count() == MANY
