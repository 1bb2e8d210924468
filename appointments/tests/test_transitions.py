"""The status machine: every change allowed and refused, by whom, with the cut-off, the CAS, and reschedule."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Scope
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from appointments.models import Appointment, AppointmentEvent, AppointmentStatus
from appointments.services import TRANSITIONS, change_status
from appointments.tests.factories import AppointmentFactory, AppointmentTypeFactory, a_slot
from config.errors import ConflictError
from conftest import bearer
from notifications.models import Notification

pytestmark = pytest.mark.django_db

S = AppointmentStatus
PATHS = {"confirm": "confirm", "check_in": "check-in", "complete": "complete", "cancel": "cancel", "no_show": "no-show"}
SIMPLE = [action for action in TRANSITIONS if action != "reschedule"]


def url(appointment, action: str = "") -> str:  # noqa: ANN001
    return f"/api/v1/appointments/{appointment.pk}/" + (f"{PATHS.get(action, action)}/" if action else "")


def appointment_for(action: str, status: str) -> Appointment:
    # A no-show is marked after the start; everything else well before it (outside the patient's cut-off).
    start = a_slot(days=-1) if action == "no_show" else a_slot(days=3)
    return AppointmentFactory(status=status, starts_at=start)


def party(appointment: Appointment, who: str):  # noqa: ANN201
    return appointment.provider if who == "provider" else appointment.patient


def code(response) -> str:  # noqa: ANN001
    return response.json()["errors"][0]["code"]


ALLOWED = [
    pytest.param(action, source, who, id=f"{action}-from-{source}-by-{who}")
    for action, transition in TRANSITIONS.items()
    if action != "reschedule"
    for source in transition.sources
    for who in transition.parties
]


@pytest.mark.parametrize(("action", "source", "who"), ALLOWED)
def test_every_allowed_change_is_made_and_recorded(action, source, who):
    appointment = appointment_for(action, source)
    actor = party(appointment, who)

    response = bearer(APIClient(), actor).post(url(appointment, action), {"note": "as planned"}, format="json")

    assert response.status_code == 200, response.content
    target = TRANSITIONS[action].target
    assert response.json()["status"] == target
    assert response.json()["status_changed_by"] == str(actor.pk)
    event = AppointmentEvent.objects.get(appointment=appointment)
    assert (event.from_status, event.to_status, event.actor_id, event.note) == (source, target, actor.pk, "as planned")


REFUSED_STATUS = [
    pytest.param(action, status, id=f"{action}-from-{status}")
    for action in SIMPLE
    for status in S.values
    if status not in TRANSITIONS[action].sources
]


@pytest.mark.parametrize(("action", "status"), REFUSED_STATUS)
def test_a_change_from_a_status_that_does_not_allow_it_is_409_naming_the_status(action, status):
    appointment = appointment_for(action, status)
    actor = party(appointment, TRANSITIONS[action].parties[-1])

    response = bearer(APIClient(), actor).post(url(appointment, action), {}, format="json")

    assert response.status_code == 409
    assert code(response) == "invalid_transition"
    assert status in response.json()["errors"][0]["detail"]
    assert Appointment.objects.get(pk=appointment.pk).status == status
    assert not AppointmentEvent.objects.exists()


REFUSED_PARTY = [
    pytest.param(action, who, id=f"{action}-by-{who}")
    for action in SIMPLE
    for who in ("patient", "provider", "granted_clinician")
    if who not in TRANSITIONS[action].parties
]


@pytest.mark.parametrize(("action", "who"), REFUSED_PARTY)
def test_a_change_by_a_party_not_allowed_to_make_it_is_403(action, who):
    appointment = appointment_for(action, TRANSITIONS[action].sources[0])
    if who == "granted_clinician":
        actor = ClinicianFactory()
        CareTeamGrantFactory(patient=appointment.patient, clinician=actor, scopes=[Scope.APPOINTMENTS])
    else:
        actor = party(appointment, who)

    response = bearer(APIClient(), actor).post(url(appointment, action), {}, format="json")

    assert response.status_code == 403
    assert Appointment.objects.get(pk=appointment.pk).status == TRANSITIONS[action].sources[0]


def test_patients_cancel_only_before_the_cut_off_and_providers_at_any_time(settings):
    settings.APPOINTMENT_CANCEL_CUTOFF_HOURS = 24
    soon = AppointmentFactory(status=S.CONFIRMED, starts_at=timezone.now() + timedelta(hours=12))

    response = bearer(APIClient(), soon.patient).post(url(soon, "cancel"), {}, format="json")
    assert response.status_code == 400
    assert code(response) == "cancel_cutoff"

    response = bearer(APIClient(), soon.provider).post(url(soon, "cancel"), {}, format="json")
    assert response.status_code == 200
    assert Notification.objects.filter(recipient=soon.patient, kind="appointment_cancelled").count() == 1


def test_a_patients_cancel_tells_the_provider_and_confirm_tells_the_patient():
    appointment = AppointmentFactory(status=S.REQUESTED)
    bearer(APIClient(), appointment.provider).post(url(appointment, "confirm"), {}, format="json")
    bearer(APIClient(), appointment.patient).post(url(appointment, "cancel"), {}, format="json")
    assert Notification.objects.filter(recipient=appointment.patient, kind="appointment_confirmed").count() == 1
    assert Notification.objects.filter(recipient=appointment.provider, kind="appointment_cancelled").count() == 1


def test_a_no_show_is_marked_only_after_the_start():
    appointment = AppointmentFactory(status=S.CONFIRMED, starts_at=a_slot(days=1))
    response = bearer(APIClient(), appointment.provider).post(url(appointment, "no_show"), {}, format="json")
    assert response.status_code == 400
    assert code(response) == "too_early"


def test_a_change_that_lost_a_race_is_409_status_changed_naming_the_current_status():
    appointment = AppointmentFactory(status=S.REQUESTED)
    stale = Appointment.objects.get(pk=appointment.pk)
    Appointment.objects.filter(pk=appointment.pk).update(status=S.CANCELLED)  # someone else, meanwhile

    with pytest.raises(ConflictError) as raised:
        change_status(appointment=stale, action="confirm", actor=appointment.provider)

    assert raised.value.code == "status_changed"
    assert "cancelled" in raised.value.detail
    assert Appointment.objects.get(pk=appointment.pk).status == S.CANCELLED
    assert not AppointmentEvent.objects.exists()


# --- Reschedule --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["patient", "provider"])
def test_a_reschedule_books_the_new_slot_linked_to_the_old_which_it_may_overlap(who):
    old = AppointmentFactory(status=S.CONFIRMED, starts_at=a_slot(days=3, hour=10))
    actor = party(old, who)
    new_start = old.starts_at + timedelta(minutes=15)

    response = bearer(APIClient(), actor).post(
        url(old, "reschedule"), {"starts_at": new_start.isoformat()}, format="json"
    )

    assert response.status_code == 201, response.content
    new = Appointment.objects.get(pk=response.json()["id"])
    assert new.rescheduled_from_id == old.pk
    assert (new.status, new.starts_at, new.patient_id, new.booked_by_id) == (
        S.REQUESTED,
        new_start,
        old.patient_id,
        actor.pk,
    )
    old.refresh_from_db()
    assert old.status == S.RESCHEDULED
    detail = bearer(APIClient(), old.patient).get(url(old)).json()
    assert detail["rescheduled_to"] == str(new.pk)


def test_a_refused_reschedule_leaves_the_old_booking_as_it_was():
    old = AppointmentFactory(status=S.CONFIRMED, starts_at=a_slot(days=3, hour=10))
    other = AppointmentFactory(appointment_type=old.appointment_type, starts_at=a_slot(days=3, hour=12))
    client = bearer(APIClient(), old.patient)

    taken = client.post(url(old, "reschedule"), {"starts_at": other.starts_at.isoformat()}, format="json")
    outside = client.post(url(old, "reschedule"), {"starts_at": a_slot(days=3, hour=22).isoformat()}, format="json")

    assert (taken.status_code, code(taken)) == (409, "slot_taken")
    assert (outside.status_code, code(outside)) == (400, "outside_availability")
    old.refresh_from_db()
    assert old.status == S.CONFIRMED
    assert Appointment.objects.count() == 2
    assert not AppointmentEvent.objects.exists()


# --- Provider-only fields ----------------------------------------------------------------------------------------


def test_a_patient_edits_the_reason_but_not_the_clinical_fields():
    appointment = AppointmentFactory()
    client = bearer(APIClient(), appointment.patient)

    assert client.patch(url(appointment), {"reason": "Follow-up"}, format="json").status_code == 200
    response = client.patch(url(appointment), {"notes": "mine", "diagnosis": "self-diagnosed"}, format="json")

    assert response.status_code == 400
    assert {(e["code"], e["attr"]) for e in response.json()["errors"]} == {
        ("provider_only", "notes"),
        ("provider_only", "diagnosis"),
    }
    appointment.refresh_from_db()
    assert (appointment.reason, appointment.notes, appointment.diagnosis) == ("Follow-up", "", "")


def test_the_provider_writes_clinical_fields_seen_by_the_patient_and_a_consented_clinician():
    appointment = AppointmentFactory()
    response = bearer(APIClient(), appointment.provider).patch(
        url(appointment), {"notes": "Stable", "diagnosis": "Hypertension", "plan": "Recheck in 3 months"}, format="json"
    )
    assert response.status_code == 200, response.content

    assert bearer(APIClient(), appointment.patient).get(url(appointment)).json()["diagnosis"] == "Hypertension"
    clinician = ClinicianFactory()
    CareTeamGrantFactory(patient=appointment.patient, clinician=clinician, scopes=[Scope.APPOINTMENTS])
    client = bearer(APIClient(), clinician)
    assert client.get(url(appointment)).json()["plan"] == "Recheck in 3 months"
    assert client.patch(url(appointment), {"reason": "x"}, format="json").status_code == 403


def test_a_video_link_is_the_providers_and_only_for_telemedicine():
    in_person = AppointmentFactory()
    video = AppointmentFactory(appointment_type=AppointmentTypeFactory(telemedicine=True), telemedicine=True)
    link = {"video_link": "https://meet.example.org/abc"}

    response = bearer(APIClient(), in_person.provider).patch(url(in_person), link, format="json")
    assert (response.status_code, code(response)) == (400, "not_telemedicine")
    response = bearer(APIClient(), video.patient).patch(url(video), link, format="json")
    assert (response.status_code, code(response)) == (400, "provider_only")
    response = bearer(APIClient(), video.provider).patch(url(video), link, format="json")
    assert response.status_code == 200
    assert response.json()["video_link"] == link["video_link"]
