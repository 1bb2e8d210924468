"""upcoming/, stats/ and day/: the caller's own appointments, as patient or provider, in a fixed number of queries."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessLog
from accounts.tests.factories import UserFactory
from appointments.models import AppointmentStatus
from appointments.tests.factories import AppointmentFactory, AppointmentTypeFactory, ProviderFactory, a_slot
from conftest import bearer

pytestmark = pytest.mark.django_db

S = AppointmentStatus


def client_of(user) -> APIClient:  # noqa: ANN001
    return bearer(APIClient(), user)


def ids(body: list) -> list[str]:
    return [item["id"] for item in body]


# --- upcoming/ ----------------------------------------------------------------------------------------------------


def test_upcoming_lists_active_future_appointments_soonest_first_as_patient_and_provider():
    patient = UserFactory()
    kind = AppointmentTypeFactory()
    provider = kind.provider.user
    later = AppointmentFactory(patient=patient, appointment_type=kind, starts_at=a_slot(days=5))
    sooner = AppointmentFactory(patient=patient, status=S.CONFIRMED, starts_at=a_slot(days=2))
    AppointmentFactory(patient=patient, status=S.CANCELLED, starts_at=a_slot(days=1))
    AppointmentFactory(patient=patient, status=S.COMPLETED, starts_at=a_slot(days=-2))
    AppointmentFactory(patient=patient, status=S.CONFIRMED, starts_at=a_slot(days=-2))  # over, not yet marked
    someone_else = AppointmentFactory(starts_at=a_slot(days=1))

    response = client_of(patient).get("/api/v1/appointments/upcoming/")

    assert response.status_code == 200
    assert ids(response.json()["results"]) == [str(sooner.pk), str(later.pk)]
    as_provider = client_of(provider).get("/api/v1/appointments/upcoming/").json()
    assert ids(as_provider["results"]) == [str(later.pk)]
    assert str(someone_else.pk) not in str(as_provider)


def test_upcoming_takes_a_fixed_number_of_queries(django_assert_max_num_queries):
    patient = UserFactory()
    for days in range(1, 4):
        AppointmentFactory(patient=patient, starts_at=a_slot(days=days))
    client = client_of(patient)
    with django_assert_max_num_queries(8) as few:
        client.get("/api/v1/appointments/upcoming/")
    for days in range(4, 12):
        AppointmentFactory(patient=patient, starts_at=a_slot(days=days))

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/v1/appointments/upcoming/")

    assert response.json()["count"] == 11


def test_a_providers_read_of_upcoming_is_access_logged_per_patient():
    appointment = AppointmentFactory(starts_at=a_slot(days=2))

    client_of(appointment.provider).get("/api/v1/appointments/upcoming/")

    logged = list(AccessLog.objects.values_list("actor_id", "patient_id", "action", "resource"))
    assert logged == [(appointment.provider_id, appointment.patient_id, "list", "appointment")]


# --- stats/ -------------------------------------------------------------------------------------------------------


def test_stats_count_by_status_type_and_month_for_each_role():
    patient = UserFactory()
    kind = AppointmentTypeFactory(name="Follow-up")
    dec, jan = datetime(2026, 12, 10, 10, tzinfo=UTC), datetime(2027, 1, 5, 10, tzinfo=UTC)
    AppointmentFactory(patient=patient, appointment_type=kind, starts_at=dec)
    AppointmentFactory(patient=patient, appointment_type=kind, starts_at=dec + timedelta(days=1), status=S.CANCELLED)
    AppointmentFactory(patient=patient, appointment_type=kind, starts_at=jan, status=S.CONFIRMED)
    as_provider = AppointmentFactory(patient=UserFactory(), starts_at=dec)
    AppointmentFactory(starts_at=dec)  # nobody's business of theirs

    body = client_of(patient).get("/api/v1/appointments/stats/").json()

    mine = body["as_patient"]
    assert mine["total"] == 3
    assert mine["by_status"] == {**dict.fromkeys(S.values, 0), "requested": 1, "cancelled": 1, "confirmed": 1}
    assert mine["by_type"] == [{"appointment_type": str(kind.pk), "name": "Follow-up", "count": 3}]
    assert [(m["month"], m["count"]) for m in mine["by_month"]] == [("2026-12", 2), ("2027-01", 1)]
    assert mine["by_month"][0]["by_status"]["cancelled"] == 1
    assert body["as_provider"]["total"] == 0
    provider_body = client_of(as_provider.provider).get("/api/v1/appointments/stats/").json()
    assert provider_body["as_provider"]["total"] == 1
    assert provider_body["as_patient"]["total"] == 0


def test_stats_take_whole_local_days_of_the_callers_time_zone():
    patient = UserFactory()
    patient.profile.timezone = "America/New_York"
    patient.profile.save()
    # 03:00 UTC on 11 December is still 10 December in New York.
    AppointmentFactory(patient=patient, starts_at=datetime(2026, 12, 11, 3, tzinfo=UTC))
    AppointmentFactory(patient=patient, starts_at=datetime(2026, 12, 12, 15, tzinfo=UTC))

    body = client_of(patient).get("/api/v1/appointments/stats/?start_date=2026-12-10&end_date=2026-12-10").json()

    assert body["timezone"] == "America/New_York"
    assert body["as_patient"]["total"] == 1


def test_stats_refuse_a_range_that_ends_before_it_starts():
    response = client_of(UserFactory()).get("/api/v1/appointments/stats/?start_date=2026-12-10&end_date=2026-12-01")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "end_date"


def test_stats_take_a_fixed_number_of_queries(django_assert_max_num_queries):
    patient = UserFactory()
    AppointmentFactory(patient=patient, starts_at=a_slot(days=1))
    client = client_of(patient)
    with django_assert_max_num_queries(10) as few:
        client.get("/api/v1/appointments/stats/")
    for days in range(2, 10):
        AppointmentFactory(patient=patient, starts_at=a_slot(days=days * 20))

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/v1/appointments/stats/")

    assert response.json()["as_patient"]["total"] == 9


# --- day/ ---------------------------------------------------------------------------------------------------------


def test_the_day_view_is_the_providers_local_day():
    provider = ProviderFactory(timezone="Europe/Paris")
    kind = AppointmentTypeFactory(provider=provider)
    day = timezone.now().date() + timedelta(days=3)
    # 23:30 UTC the day before is 00:30 in Paris: that local day.
    early = AppointmentFactory(
        appointment_type=kind,
        starts_at=datetime.combine(day - timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=23, minutes=30),
    )
    late = AppointmentFactory(
        appointment_type=kind, starts_at=datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=15)
    )
    AppointmentFactory(  # 23:30 UTC on the day is the next day in Paris
        appointment_type=kind,
        starts_at=datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23, minutes=30),
    )

    response = client_of(provider.user).get(f"/api/v1/appointments/day/?date={day.isoformat()}")

    assert response.status_code == 200
    body = response.json()
    assert (body["date"], body["timezone"]) == (day.isoformat(), "Europe/Paris")
    assert ids(body["appointments"]) == [str(early.pk), str(late.pk)]


def test_the_day_view_of_someone_who_is_no_provider_is_empty():
    appointment = AppointmentFactory()

    body = client_of(appointment.patient).get(f"/api/v1/appointments/day/?date={appointment.starts_at.date()}").json()

    assert body["appointments"] == []


@pytest.mark.parametrize("value", ["", "tomorrow", "2026-13-01", "9999-12-31"])
def test_a_bad_date_is_400_naming_date(value):
    response = client_of(UserFactory()).get(f"/api/v1/appointments/day/?date={value}")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "date"


def test_the_day_view_takes_a_fixed_number_of_queries(django_assert_max_num_queries):
    kind = AppointmentTypeFactory()
    AppointmentFactory(appointment_type=kind, starts_at=a_slot(days=3, hour=8))
    url = f"/api/v1/appointments/day/?date={a_slot(days=3).date()}"
    client = client_of(kind.provider.user)
    with django_assert_max_num_queries(15) as few:
        client.get(url)
    for hour in (9, 10, 11, 12):
        AppointmentFactory(appointment_type=kind, starts_at=a_slot(days=3, hour=hour))

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)

    assert len(response.json()["appointments"]) == 5
