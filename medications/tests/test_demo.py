"""The demo seeder (run by seed_demo): plans with a month of dose history and one interaction warning, twice safely."""

from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from medications.models import Dose, MedicationPlan, PlanRevision
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_plans_with_history_and_an_interaction_warning_once():
    out = StringIO()
    call_command("seed_demo", stdout=out)

    plans = MedicationPlan.objects.select_related("patient", "medication")
    assert plans.count() == 7
    assert all(plan.medication is not None for plan in plans)  # every demo medicine is in the catalog
    statuses = Counter(Dose.objects.values_list("status", flat=True))
    assert statuses["taken"] > statuses["missed"] > 0
    assert statuses["skipped"] > 0
    assert Dose.objects.filter(late=True).exists()
    assert Dose.objects.filter(scheduled_at__isnull=True).exists()  # as-needed doses
    warned = PlanRevision.objects.exclude(acknowledged_findings=[]).get()
    assert warned.plan.patient.email == "alice@openvitals.local"
    assert [f["kind"] for f in warned.acknowledged_findings] == ["interaction"]
    metformin = plans.get(medication__ingredients__name="metformin")
    assert metformin.prescriber.email == "dr.okafor@openvitals.local"
    assert Notification.objects.filter(kind="medication_refill", recipient__email="bob@openvitals.local").count() == 1
    assert "medications: 7 plans" in out.getvalue()

    rows = (MedicationPlan.objects.count(), Dose.objects.count())
    call_command("seed_demo", stdout=StringIO())
    assert (MedicationPlan.objects.count(), Dose.objects.count()) == rows
