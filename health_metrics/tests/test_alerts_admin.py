"""Alert triage in the admin: open first, scoped to consented patients, bulk acknowledge."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory
from health_metrics.tests.outsider import _health_alert

pytestmark = pytest.mark.django_db

TRIAGE = reverse("admin:health_metrics_healthalert_changelist")


@pytest.fixture
def alerts(user, other_user):
    mine = _health_alert(user)
    theirs = _health_alert(other_user)
    closed = _health_alert(user, status="resolved", resolved_at=mine.started_at)
    return mine, theirs, closed


def listed(response):
    return list(response.context["cl"].result_list)


def test_staff_triage_lists_open_alerts_by_default_and_all_on_request(client, staff, alerts):
    mine, theirs, closed = alerts
    client.force_login(staff)
    assert set(listed(client.get(TRIAGE))) == {mine, theirs}
    assert set(listed(client.get(TRIAGE, {"status": "all"}))) == {mine, theirs, closed}
    assert listed(client.get(TRIAGE, {"status": "resolved"})) == [closed]


def test_critical_alerts_come_before_warnings_and_newer_before_older(client, staff, user):
    older_critical = _health_alert(user, started_at=timezone.now() - timedelta(hours=2))
    warning = _health_alert(user, severity="warning", direction="high")
    client.force_login(staff)
    assert listed(client.get(TRIAGE)) == [older_critical, warning]


def test_a_clinician_triages_only_consented_patients_and_bulk_acknowledges(client, clinician, user, alerts):
    mine, theirs, _ = alerts
    client.force_login(clinician)
    assert listed(client.get(TRIAGE)) == []
    CareTeamGrantFactory(patient=user, clinician=clinician)
    assert listed(client.get(TRIAGE)) == [mine]
    response = client.post(TRIAGE, {"action": "acknowledge", "_selected_action": [mine.pk, theirs.pk]}, follow=True)
    assert response.status_code == 200
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, mine.acknowledged_by) == ("acknowledged", clinician)
    assert theirs.acknowledged_at is None  # outside the clinician's patients: untouched
    assert AccessLog.objects.filter(actor=clinician, patient=user, action="update", resource="healthalert").exists()
    assert client.get(reverse("admin:health_metrics_healthalert_change", args=[theirs.pk])).status_code == 302
