"""Booking: 201, the 400s (past, notice, outside hours, horizon), 409 on a clash, and the database guard itself."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from appointments.models import Appointment, AppointmentEvent, AppointmentStatus, DateOverride
from appointments.tests.factories import AppointmentFactory, AppointmentTypeFactory, ProviderFactory, a_slot
from conftest import bearer
from notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/appointments/"


@pytest.fixture
def kind():
    return AppointmentTypeFactory(duration_minutes=30)


def book(client, kind, start, **extra):  # noqa: ANN001, ANN201
    body = {"provider": str(kind.provider.pk), "appointment_type": str(kind.pk), "starts_at": start.isoformat()}
    return client.post(URL, body | extra, format="json")


def error(response) -> tuple[str, str | None]:  # noqa: ANN001
    first = response.json()["errors"][0]
    return first["code"], first["attr"]


def test_a_patient_books_a_slot_and_the_provider_is_told(user, kind):
    start = a_slot()
    response = book(bearer(APIClient(), user), kind, start, reason="Chest pain when running")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["patient"] == str(user.pk)
    assert body["provider"] == str(kind.provider.pk)
    assert body["status"] == "requested"
    assert body["starts_at"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
    assert body["reason"] == "Chest pain when running"
    assert [e["to_status"] for e in body["events"]] == ["requested"]
    appointment = Appointment.objects.get(pk=body["id"])
    assert (appointment.ends_at - appointment.starts_at) == timedelta(minutes=30)
    told = Notification.objects.get(recipient=kind.provider.user)
    assert told.kind == "appointment_booked"
    assert "Chest pain" not in told.title + told.body  # no reason in a notification


def test_a_booked_slot_is_409_naming_the_clash(user, other_user, kind):
    start = a_slot()
    assert book(bearer(APIClient(), user), kind, start).status_code == 201

    response = book(bearer(APIClient(), other_user), kind, start + timedelta(minutes=15))

    assert response.status_code == 409
    assert error(response) == ("slot_taken", None)
    assert start.isoformat() in response.json()["errors"][0]["detail"]
    assert Appointment.objects.count() == 1


def test_back_to_back_slots_are_fine(user, other_user, kind):
    start = a_slot()
    assert book(bearer(APIClient(), user), kind, start).status_code == 201
    assert book(bearer(APIClient(), other_user), kind, start + timedelta(minutes=30)).status_code == 201
    assert book(bearer(APIClient(), other_user), kind, start - timedelta(minutes=30)).status_code == 201


def test_buffers_are_part_of_the_clash(user, other_user):
    provider = ProviderFactory(buffer_before_minutes=10, buffer_after_minutes=10)
    kind = AppointmentTypeFactory(provider=provider, duration_minutes=30)
    start = a_slot()
    assert book(bearer(APIClient(), user), kind, start).status_code == 201

    assert book(bearer(APIClient(), other_user), kind, start + timedelta(minutes=45)).status_code == 409
    assert book(bearer(APIClient(), other_user), kind, start + timedelta(minutes=60)).status_code == 201


def test_cancelled_bookings_hold_no_time(user, other_user, kind):
    AppointmentFactory(appointment_type=kind, starts_at=a_slot(), status=AppointmentStatus.CANCELLED)
    assert book(bearer(APIClient(), other_user), kind, a_slot()).status_code == 201


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (lambda: a_slot(days=-1), "in_the_past"),
        (lambda: a_slot(days=0, hour=0), "in_the_past"),
        (lambda: a_slot(days=3, hour=10, minute=5), "outside_availability"),
        (lambda: a_slot(days=3, hour=20), "outside_availability"),
        (lambda: a_slot(days=3, hour=17, minute=45), "outside_availability"),  # would end after 18:00
        (lambda: a_slot(days=90), "beyond_horizon"),
    ],
)
def test_an_unbookable_start_is_400_naming_why(user, kind, start, code):
    response = book(bearer(APIClient(), user), kind, start())
    assert response.status_code == 400
    assert error(response) == (code, "starts_at")
    assert Appointment.objects.count() == 0


def test_inside_minimum_notice_is_400(user, kind):
    from django.utils import timezone

    soon = (timezone.now() + timedelta(minutes=60)).astimezone(UTC)
    start = soon.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    kind.provider.working_hours.update(start="00:00", end="23:59")
    response = book(bearer(APIClient(), user), kind, start)
    assert response.status_code == 400
    assert error(response) == ("inside_minimum_notice", "starts_at")


def test_a_day_off_is_outside_availability(user, kind):
    start = a_slot()
    DateOverride.objects.create(provider=kind.provider, date=start.date(), kind="unavailable")
    response = book(bearer(APIClient(), user), kind, start)
    assert error(response) == ("outside_availability", "starts_at")


def test_a_type_of_another_provider_is_400_naming_the_valid_ones(user, kind):
    other = AppointmentTypeFactory()
    body = {"provider": str(kind.provider.pk), "appointment_type": str(other.pk), "starts_at": a_slot().isoformat()}
    response = bearer(APIClient(), user).post(URL, body, format="json")
    assert response.status_code == 400
    assert str(kind.pk) in response.json()["errors"][0]["detail"]


def test_a_clinician_books_for_a_patient_whose_grant_covers_appointments(user, kind):
    clinician = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.APPOINTMENTS])

    response = book(bearer(APIClient(), clinician), kind, a_slot(), patient=str(user.pk))

    assert response.status_code == 201, response.content
    assert response.json()["patient"] == str(user.pk)
    assert response.json()["booked_by"] == str(clinician.pk)
    told = set(Notification.objects.filter(kind="appointment_booked").values_list("recipient_id", flat=True))
    assert told == {user.pk, kind.provider.pk}
    assert AccessLog.objects.filter(actor_id=clinician.pk, patient_id=user.pk, action="create").count() == 1


def test_a_clinician_whose_grant_lacks_appointments_cannot_book_for_the_patient(user, kind):
    clinician = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.METRICS, Scope.MEDICATIONS])

    response = book(bearer(APIClient(), clinician), kind, a_slot(), patient=str(user.pk))

    assert response.status_code == 404
    assert Appointment.objects.count() == 0


def test_a_patient_cannot_book_for_someone_else(user, other_user, kind):
    response = book(bearer(APIClient(), other_user), kind, a_slot(), patient=str(user.pk))
    assert response.status_code == 404


def test_the_exclusion_constraint_refuses_an_overlapping_insert_whatever_the_code_checked(kind):
    if connection.vendor != "postgresql":
        pytest.skip("the exclusion constraint is PostgreSQL's")
    first = AppointmentFactory(appointment_type=kind, starts_at=a_slot())
    with pytest.raises(IntegrityError, match="appointment_no_double_booking"), transaction.atomic():
        AppointmentFactory(appointment_type=kind, starts_at=first.starts_at + timedelta(minutes=29))
    # half-open: touching is fine; a cancelled one holds nothing
    AppointmentFactory(appointment_type=kind, starts_at=first.ends_at)
    AppointmentFactory(appointment_type=kind, starts_at=first.starts_at, status=AppointmentStatus.CANCELLED)
    # another provider's time is theirs
    AppointmentFactory(starts_at=first.starts_at)


def test_the_exclusion_constraint_also_guards_updates_back_to_an_active_status(kind):
    first = AppointmentFactory(appointment_type=kind, starts_at=a_slot())
    second = AppointmentFactory(appointment_type=kind, starts_at=first.starts_at, status=AppointmentStatus.CANCELLED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.filter(pk=second.pk).update(status=AppointmentStatus.CONFIRMED)


# --- The directory and free slots ------------------------------------------------------------------------------


def test_providers_are_searchable_by_specialty_organization_and_name(user):
    cardiologist = ProviderFactory(user__first_name="Ada", user__last_name="Heart")
    AppointmentTypeFactory(provider=cardiologist)
    dermatologist = ProviderFactory(user__clinician_profile__specialty="Dermatology")
    client = bearer(APIClient(), user)

    def ids(**query):  # noqa: ANN003, ANN202
        response = client.get("/api/v1/providers/", query)
        assert response.status_code == 200
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {str(cardiologist.pk), str(dermatologist.pk)}
    assert ids(specialty="derma") == {str(dermatologist.pk)}
    assert ids(name="heart") == {str(cardiologist.pk)}
    organization = cardiologist.user.clinician_profile.organization_id
    assert ids(organization=str(organization)) == {str(cardiologist.pk)}
    detail = client.get(f"/api/v1/providers/{cardiologist.pk}/").json()
    assert detail["specialty"] == "Cardiology"
    assert [t["name"] for t in detail["appointment_types"]] == ["Consultation"]


def test_availability_lists_free_slots_without_the_booked_ones(user, kind, django_assert_max_num_queries):
    start = a_slot()
    AppointmentFactory(appointment_type=kind, starts_at=start)
    client = bearer(APIClient(), user)
    query = {"start_date": start.date().isoformat(), "end_date": start.date().isoformat(), "type": str(kind.pk)}

    with django_assert_max_num_queries(12):
        response = client.get(f"/api/v1/providers/{kind.provider.pk}/availability/", query)

    assert response.status_code == 200, response.content
    body = response.json()
    starts = [slot["starts_at"] for slot in body["slots"]]
    assert len(starts) == 4 * 10 - 1 - 3  # 08:00-17:30 every 15 min, minus 09:45, 10:00 and 10:15
    assert not any(s.startswith(start.strftime("%Y-%m-%dT10:00")) for s in starts)
    assert body["timezone"] == "UTC"


def test_availability_queries_do_not_grow_with_the_range(user, kind, django_assert_num_queries):
    client = bearer(APIClient(), user)
    day = a_slot().date()
    url = f"/api/v1/providers/{kind.provider.pk}/availability/"
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    counts = []
    for days in (0, 20):
        query = {
            "start_date": day.isoformat(),
            "end_date": (day + timedelta(days=days)).isoformat(),
            "type": str(kind.pk),
        }
        with CaptureQueriesContext(conn) as captured:
            assert client.get(url, query).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ({"start_date": "2026-12-10", "end_date": "2027-02-10"}, "end_date"),
        ({"start_date": "2026-12-10", "end_date": "2026-12-09"}, "end_date"),
        ({"start_date": "2026-12-10"}, "end_date"),
    ],
)
def test_availability_refuses_bad_ranges(user, kind, query, attr):
    response = bearer(APIClient(), user).get(
        f"/api/v1/providers/{kind.provider.pk}/availability/", {**query, "type": str(kind.pk)}
    )
    assert response.status_code == 400
    assert error(response)[1] == attr


def test_availability_names_the_valid_types(user, kind):
    query = {"start_date": "2026-12-10", "end_date": "2026-12-10", "type": str(AppointmentTypeFactory().pk)}
    response = bearer(APIClient(), user).get(f"/api/v1/providers/{kind.provider.pk}/availability/", query)
    assert response.status_code == 400
    assert error(response)[1] == "type"
    assert str(kind.pk) in response.json()["errors"][0]["detail"]


def test_booking_writes_one_event(user, kind):
    response = book(bearer(APIClient(), user), kind, a_slot())
    event = AppointmentEvent.objects.get(appointment_id=response.json()["id"])
    assert (event.from_status, event.to_status, event.actor_id) == (None, "requested", user.pk)


def test_other_users_see_nothing_of_anothers_booking(user, other_user, kind):
    appointment = AppointmentFactory(appointment_type=kind, patient=user)
    client = bearer(APIClient(), other_user)
    assert client.get(f"{URL}{appointment.pk}/").status_code == 404
    assert client.get(URL).json()["count"] == 0


def test_the_provider_lists_their_appointments_and_filters_by_role(user, kind):
    AppointmentFactory(appointment_type=kind, patient=user)
    provider_user = kind.provider.user
    AppointmentFactory(patient=provider_user)  # the provider as someone else's patient
    client = bearer(APIClient(), provider_user)
    assert client.get(URL).json()["count"] == 2
    assert client.get(URL, {"role": "provider"}).json()["count"] == 1
    assert client.get(URL, {"role": "patient"}).json()["count"] == 1


def test_a_stranger_cannot_book_with_themselves_as_provider(kind):
    response = book(bearer(APIClient(), kind.provider.user), kind, a_slot())
    assert response.status_code == 400
    assert error(response) == ("self_booking", "patient")


def test_a_provider_not_accepting_bookings_is_400_and_an_unknown_one_too(user, kind):
    kind.provider.accepting = False
    kind.provider.save()
    response = book(bearer(APIClient(), user), kind, a_slot())
    assert (response.status_code, error(response)) == (400, ("not_accepting", "provider"))
    body = {"provider": str(user.pk), "appointment_type": str(kind.pk), "starts_at": a_slot().isoformat()}
    response = bearer(APIClient(), user).post(URL, body, format="json")
    assert response.status_code == 400
    assert error(response)[1] == "provider"


def test_a_provider_is_a_clinicians_account(user):
    from django.core.exceptions import ValidationError

    from appointments.models import Provider

    with pytest.raises(ValidationError, match="clinician"):
        Provider(user=user).full_clean()
    with pytest.raises(ValidationError, match="language"):
        Provider(user=ClinicianFactory(), languages="en").full_clean()


def test_a_granted_clinician_lists_the_patients_appointments_and_staff_see_all(user, other_user, staff):
    mine = AppointmentFactory(patient=user)
    AppointmentFactory(patient=other_user)
    clinician = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=[Scope.APPOINTMENTS])

    response = bearer(APIClient(), clinician).get(URL, {"patient": str(user.pk)})
    assert [row["id"] for row in response.json()["results"]] == [str(mine.pk)]
    assert bearer(APIClient(), clinician).get(URL, {"patient": str(other_user.pk)}).status_code == 404
    assert bearer(APIClient(), staff).get(URL).json()["count"] == 2
    assert AccessLog.objects.filter(actor_id=clinician.pk, patient_id=user.pk, action="list").count() == 1


def _next_spring_forward_in_new_york(after):  # noqa: ANN001, ANN202
    """The next local date on which New York's clocks go forward (the second Sunday of March), after `after`."""
    from datetime import date

    for year in (after.year, after.year + 1):
        day = date(year, 3, 8)
        day += timedelta(days=(6 - day.weekday()) % 7)
        if day > after:
            return day
    raise AssertionError("unreachable")


def test_availability_through_the_api_follows_the_providers_zone_across_a_dst_change(user):
    from datetime import time

    from django.utils import timezone

    change = _next_spring_forward_in_new_york(timezone.now().date() + timedelta(days=2))
    provider = ProviderFactory(
        timezone="America/New_York", horizon_days=400, hours=[(day, time(9), time(10)) for day in range(7)]
    )
    kind = AppointmentTypeFactory(provider=provider, duration_minutes=60)
    days = [change + timedelta(days=d) for d in (-1, 0, 1)]
    query = {"start_date": days[0].isoformat(), "end_date": days[-1].isoformat(), "type": str(kind.pk)}

    response = bearer(APIClient(), user).get(f"/api/v1/providers/{provider.pk}/availability/", query)

    assert response.status_code == 200, response.content
    slots = response.json()["slots"]
    assert [s["starts_at"][11:] for s in slots] == ["14:00:00Z", "13:00:00Z", "13:00:00Z"]
    assert [s["local_start"] for s in slots] == [
        f"{days[0]}T09:00:00-05:00",
        f"{days[1]}T09:00:00-04:00",
        f"{days[2]}T09:00:00-04:00",
    ]
    booked = book(bearer(APIClient(), user), kind, datetime.fromisoformat(slots[1]["starts_at"]))
    assert booked.status_code == 201, booked.content


def test_staff_book_on_a_patients_behalf(user, staff, kind):
    response = book(bearer(APIClient(), staff), kind, a_slot(), patient=str(user.pk))
    assert response.status_code == 201, response.content
    assert (response.json()["patient"], response.json()["booked_by"]) == (str(user.pk), str(staff.pk))
