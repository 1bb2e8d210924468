"""Plans over the API: create with findings, revisions, schedule changes, discontinuing, refills, clinicians."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from conftest import bearer
from medications.models import Dose, DoseStatus, Medication, MedicationPlan, PlanRevision, PlanStatus
from notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/medications/"


def error(response) -> tuple[str, str | None]:  # noqa: ANN001
    first = response.json()["errors"][0]
    return first["code"], first["attr"]


def catalog(ingredient: str) -> Medication:
    return Medication.objects.filter(ingredients__name=ingredient).order_by("pk").first()


def test_a_patient_starts_a_free_text_plan_and_its_next_48_hours_of_doses_exist(user):
    response = bearer(APIClient(), user).post(
        URL, {"name": "Vitamin D", "dose": 1, "dose_unit": "capsule", "times": ["8:00", "20:00"]}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Vitamin D"
    assert body["times"] == ["08:00", "20:00"]
    assert body["status"] == "active"
    assert body["revision"] == 1
    assert body["findings"] == []
    plan = MedicationPlan.objects.get(pk=body["id"])
    doses = list(Dose.objects.filter(plan=plan).order_by("scheduled_at"))
    now = timezone.now()
    assert len(doses) == 4  # two a day over the next 48 h
    assert all(now <= dose.scheduled_at < now + timedelta(hours=48) for dose in doses)
    assert PlanRevision.objects.get(plan=plan, number=1).changes["name"] == [None, "Vitamin D"]


def test_a_catalog_plan_takes_the_catalog_name(user):
    metformin = catalog("metformin")
    response = bearer(APIClient(), user).post(URL, {"medication": metformin.pk, "times": ["08:00"]}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["name"] == metformin.name
    assert response.json()["medication"] == metformin.pk


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"name": "X"}, "times"),
        ({"name": "X", "times": ["25:00"]}, "times"),
        ({"name": "X", "as_needed": True, "times": ["08:00"]}, "as_needed"),
        ({"name": "X", "times": ["08:00"], "max_doses_per_day": 3}, "max_doses_per_day"),
        ({"name": "X", "rrule": "FREQ=SECONDLY"}, "rrule"),
        ({"name": "X", "rrule": "not a rule"}, "rrule"),
        ({"times": ["08:00"]}, "name"),
        ({"medication": 999999, "times": ["08:00"]}, "medication"),
        ({"name": "X", "times": ["08:00"], "dose": 0}, "dose"),
        ({"name": "X", "times": ["08:00"], "stock": -1}, "stock"),
        ({"name": "X", "times": ["08:00"], "start_date": "2026-05-02", "end_date": "2026-05-01"}, "end_date"),
        ({"name": "X", "times": ["08:00"], "timing": "sometimes"}, "timing"),
    ],
)
def test_a_bad_plan_is_a_400_naming_the_field(user, body, attr):
    response = bearer(APIClient(), user).post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert error(response)[1] == attr
    assert not MedicationPlan.objects.exists()


def test_a_severe_interaction_needs_acknowledgement_and_is_kept_in_the_revision(user):
    client = bearer(APIClient(), user)
    assert (
        client.post(URL, {"medication": catalog("warfarin").pk, "times": ["18:00"]}, format="json").status_code == 201
    )
    ibuprofen = {"medication": catalog("ibuprofen").pk, "as_needed": True, "max_doses_per_day": 3}

    refused = client.post(URL, ibuprofen, format="json")
    assert refused.status_code == 409, refused.content
    assert error(refused)[0] == "unacknowledged_findings"
    assert MedicationPlan.objects.count() == 1

    accepted = client.post(URL, ibuprofen | {"acknowledge_findings": True}, format="json")
    assert accepted.status_code == 201, accepted.content
    finding = next(f for f in accepted.json()["findings"] if f["kind"] == "interaction")
    assert finding["is_severe"] is True
    assert set(finding["drugs"]) == {catalog("warfarin").name, catalog("ibuprofen").name}
    assert finding["source"]
    revision = PlanRevision.objects.get(plan_id=accepted.json()["id"], number=1)
    assert [f["code"] for f in revision.acknowledged_findings] == [finding["code"]]
    # Both plans now show the interaction in the list.
    listed = client.get(URL).json()["results"]
    assert all(any(f["kind"] == "interaction" for f in plan["findings"]) for plan in listed)


def test_an_amoxicillin_plan_for_a_penicillin_allergic_patient_warns(user):
    user.profile.allergies = ["Penicillin"]
    user.profile.save()
    client = bearer(APIClient(), user)
    body = {"medication": catalog("amoxicillin").pk, "times": ["08:00", "20:00"]}

    assert client.post(URL, body, format="json").status_code == 409
    response = client.post(URL, body | {"acknowledge_findings": True}, format="json")

    assert response.status_code == 201
    assert [f["kind"] for f in response.json()["findings"]] == ["allergy"]


def test_a_change_is_a_revision_and_moves_only_future_untaken_doses(user):
    client = bearer(APIClient(), user)
    plan_id = client.post(URL, {"name": "Vitamin D", "times": ["08:00"]}, format="json").json()["id"]
    plan = MedicationPlan.objects.get(pk=plan_id)
    kept = Dose.objects.create(
        plan=plan,
        patient=user,
        scheduled_at=timezone.now() + timedelta(hours=30),
        local_date=timezone.now().date(),
        quantity=Decimal(1),
        status=DoseStatus.TAKEN,
        taken_at=timezone.now(),
    )

    response = client.patch(f"{URL}{plan_id}/", {"times": ["09:30"], "dose": 2}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["revision"] == 2
    revision = PlanRevision.objects.get(plan=plan, number=2)
    assert revision.changes == {"times": [["08:00"], ["09:30"]], "dose": ["1", "2"]}
    assert revision.actor == user
    future = Dose.objects.filter(plan=plan, status=DoseStatus.SCHEDULED)
    assert future.exists()
    assert {d.scheduled_at.astimezone(UTC).strftime("%H:%M") for d in future} == {"09:30"}
    assert {d.quantity for d in future} == {Decimal(2)}
    assert Dose.objects.filter(pk=kept.pk).exists()
    history = client.get(f"{URL}{plan_id}/revisions/").json()
    assert [r["number"] for r in history] == [1, 2]


def test_delete_discontinues_and_keeps_the_history(user):
    client = bearer(APIClient(), user)
    plan_id = client.post(URL, {"name": "Vitamin D", "times": ["08:00"]}, format="json").json()["id"]

    assert client.delete(f"{URL}{plan_id}/").status_code == 204

    plan = MedicationPlan.objects.get(pk=plan_id)
    assert plan.status == PlanStatus.DISCONTINUED
    assert not Dose.objects.filter(plan=plan, status=DoseStatus.SCHEDULED).exists()
    assert client.get(f"{URL}{plan_id}/").json()["status"] == "discontinued"
    changed = client.patch(f"{URL}{plan_id}/", {"status": "active"}, format="json")
    assert changed.status_code == 409
    assert error(changed)[0] == "discontinued"
    assert client.delete(f"{URL}{plan_id}/").status_code == 204  # again: nothing more happens
    assert PlanRevision.objects.filter(plan=plan).count() == 2


def test_pausing_removes_future_doses_and_resuming_brings_them_back(user):
    client = bearer(APIClient(), user)
    plan_id = client.post(URL, {"name": "Vitamin D", "times": ["08:00"]}, format="json").json()["id"]

    assert client.patch(f"{URL}{plan_id}/", {"status": "paused"}, format="json").status_code == 200
    assert not Dose.objects.filter(plan_id=plan_id).exists()
    assert client.patch(f"{URL}{plan_id}/", {"status": "active"}, format="json").status_code == 200
    assert Dose.objects.filter(plan_id=plan_id, status=DoseStatus.SCHEDULED).count() >= 2


def test_refill_adds_stock_and_rearms_the_refill_reminder(user):
    client = bearer(APIClient(), user)
    body = {"name": "Vitamin D", "times": ["08:00"], "stock": 3, "refill_threshold": 5}
    plan_id = client.post(URL, body, format="json").json()["id"]
    assert Notification.objects.filter(recipient=user, kind="medication_refill").count() == 1

    response = client.post(f"{URL}{plan_id}/refill/", {"quantity": 30}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["stock"] == 33
    assert response.json()["needs_refill"] is False
    assert MedicationPlan.objects.get(pk=plan_id).refill_reminded_at is None
    assert client.post(f"{URL}{plan_id}/refill/", {"quantity": 0}, format="json").status_code == 400


def test_a_clinician_with_the_medications_scope_prescribes_and_the_patient_is_told(user):
    doctor = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=doctor, scopes=[Scope.MEDICATIONS])
    client = bearer(APIClient(), doctor)

    response = client.post(URL, {"patient": str(user.pk), "name": "Metformin", "times": ["08:00"]}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["patient"] == str(user.pk)
    assert response.json()["prescriber"] == str(doctor.pk)
    assert Notification.objects.filter(recipient=user, kind="medication_plan_changed").count() == 1
    assert AccessLog.objects.filter(actor=doctor, patient=user, action="create").exists()
    plan_id = response.json()["id"]
    assert client.patch(f"{URL}{plan_id}/", {"instructions": "With food"}, format="json").status_code == 200
    assert PlanRevision.objects.get(plan_id=plan_id, number=2).actor == doctor


def test_a_clinician_without_the_medications_scope_cannot_prescribe(user):
    doctor = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=doctor, scopes=[Scope.METRICS, Scope.APPOINTMENTS])

    response = bearer(APIClient(), doctor).post(
        URL, {"patient": str(user.pk), "name": "Metformin", "times": ["08:00"]}, format="json"
    )

    assert response.status_code == 404
    assert not MedicationPlan.objects.exists()


def test_the_plan_list_takes_a_constant_number_of_queries(user, django_assert_max_num_queries):
    client = bearer(APIClient(), user)
    for ingredient in ("metformin", "lisinopril", "atorvastatin"):
        client.post(URL, {"medication": catalog(ingredient).pk, "times": ["08:00"]}, format="json")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for ingredient in ("amlodipine", "omeprazole", "sertraline", "levothyroxine"):
        client.post(URL, {"medication": catalog(ingredient).pk, "times": ["08:00"]}, format="json")
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(URL).json()["results"]) == 7
    assert len(many) == len(few)


def test_an_elapsed_plan_made_in_new_york_in_winter_keeps_its_utc_times(user):
    user.profile.timezone = "America/New_York"
    user.profile.save()
    body = {"name": "Antibiotic", "times": ["08:00"], "interval_hours": 12, "timing": "elapsed"}

    response = bearer(APIClient(), user).post(URL, body | {"start_date": "2026-03-07"}, format="json")

    assert response.status_code == 201, response.content
    plan = MedicationPlan.objects.get(pk=response.json()["id"])
    assert plan.anchor_timezone == "America/New_York"
    from medications.schedule import occurrences
    from medications.services import schedule_of

    instants = occurrences(
        schedule_of(plan),
        zone="America/New_York",
        start=datetime(2026, 3, 7, tzinfo=UTC),
        end=datetime(2026, 3, 10, tzinfo=UTC),
    )
    assert [i.strftime("%d %H:%M") for i in instants] == [
        "07 13:00", "08 01:00", "08 13:00", "09 01:00", "09 13:00",
    ]  # fmt: skip


def test_a_plan_takes_a_name_in_medication_unit_and_a_schedule_object(user):
    body = {
        "medication": "metformin hydrochloride 500 mg oral tablet",
        "dose": 2,
        "unit": "tablet",
        "schedule": {"times": ["08:00", "20:00"], "timing": "elapsed"},
    }

    response = bearer(APIClient(), user).post(URL, body, format="json")

    assert response.status_code == 201, response.content
    answer = response.json()
    assert (answer["dose_unit"], answer["unit"], answer["times"], answer["timing"]) == (
        "tablet", "tablet", ["08:00", "20:00"], "elapsed",
    )  # fmt: skip
    plan = MedicationPlan.objects.get(pk=answer["id"])
    expected = Medication.objects.get(name="Metformin Hydrochloride 500 MG Oral Tablet")
    assert plan.medication == expected
    free = bearer(APIClient(), user).post(URL, {"medication": "Grandma's tonic", "times": ["09:00"]}, format="json")
    assert free.status_code == 201
    assert (free.json()["medication"], free.json()["name"]) == (None, "Grandma's tonic")


def test_interactions_take_ids_and_names_in_one_list(user):
    body = {"medications": [catalog("warfarin").pk, "ibuprofen"]}

    response = bearer(APIClient(), user).post(f"{URL}interactions/", body, format="json")

    assert response.status_code == 200, response.content
    assert [d["recognised"] for d in response.json()["drugs"]] == [True, True]
    assert response.json()["interactions"][0]["kind"] == "interaction"
    assert response.json()["interactions"][0]["is_severe"] is True
    one = bearer(APIClient(), user).post(f"{URL}interactions/", {"medications": ["warfarin"]}, format="json")
    assert one.status_code == 400
