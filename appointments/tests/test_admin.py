"""The appointments admin for clinicians: their own schedule only, and their own bookings as the provider even
without a grant from the patient (DESIGN §3: a clinician acts as a provider for their own appointments)."""

from datetime import time

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import AccessLog
from accounts.tests.factories import ClinicianFactory, UserFactory
from appointments.models import WorkingHours
from appointments.tests.factories import AppointmentFactory, ProviderFactory

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def not_found(response) -> bool:
    if response.status_code == 404:
        return True
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    return response.status_code == 302 and any("doesn’t exist" in m for m in messages)


def test_a_provider_sees_their_own_bookings_without_a_grant_and_is_logged():
    patient = UserFactory()
    visit = AppointmentFactory(patient=patient, reason="own-booking-reason")
    provider = visit.provider
    someone_elses = AppointmentFactory(reason="someone-elses-reason")
    client = logged_in(provider)

    listing = client.get(reverse("admin:appointments_appointment_changelist"))
    assert listing.status_code == 200
    text = listing.content.decode()
    assert str(visit.pk) in text
    assert str(someone_elses.pk) not in text

    detail = client.get(reverse("admin:appointments_appointment_change", args=[visit.pk]))
    assert detail.status_code == 200
    assert "own-booking-reason" in detail.content.decode()
    assert not_found(client.get(reverse("admin:appointments_appointment_change", args=[someone_elses.pk])))
    logged = set(AccessLog.objects.filter(actor=provider).values_list("patient_id", "action"))
    assert logged == {(patient.pk, "list"), (patient.pk, "read")}


def test_a_clinician_sees_and_edits_only_their_own_provider_schedule():
    mine = ProviderFactory(hours=[(0, time(9), time(12))])
    other = ProviderFactory()
    client = logged_in(mine.user)

    listing = client.get(reverse("admin:appointments_provider_changelist"))
    assert listing.status_code == 200
    assert str(mine.user) in listing.content.decode()
    assert str(other.user) not in listing.content.decode()
    page = client.get(reverse("admin:appointments_provider_change", args=[mine.pk]))
    assert page.status_code == 200
    assert "working_hours-TOTAL_FORMS" in page.content.decode()
    assert not_found(client.get(reverse("admin:appointments_provider_change", args=[other.pk])))
    assert client.get(reverse("admin:appointments_provider_add")).status_code == 403
    assert (
        client.post(reverse("admin:appointments_provider_delete", args=[mine.pk]), {"post": "yes"}).status_code == 403
    )

    # Their own hours are theirs to change: the change form with one more window.
    form = page.context["adminform"].form
    hours = list(mine.working_hours.all())
    data = {name: value for name, value in form.initial.items() if value is not None and name != "user"}
    data["languages"] = '["en"]'
    for prefix, rows in (("appointment_types", []), ("working_hours", hours), ("date_overrides", [])):
        data |= {f"{prefix}-TOTAL_FORMS": len(rows) + (prefix == "working_hours"), f"{prefix}-INITIAL_FORMS": len(rows)}
        data |= {f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for i, row in enumerate(hours):
        data |= {f"working_hours-{i}-id": row.pk, f"working_hours-{i}-provider": mine.pk}
        data |= {
            f"working_hours-{i}-weekday": row.weekday,
            f"working_hours-{i}-start": "09:00",
            f"working_hours-{i}-end": "12:00",
        }
    n = len(hours)
    data |= {f"working_hours-{n}-provider": mine.pk, f"working_hours-{n}-weekday": 2}
    data |= {f"working_hours-{n}-start": "14:00", f"working_hours-{n}-end": "17:00"}
    response = client.post(reverse("admin:appointments_provider_change", args=[mine.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert WorkingHours.objects.filter(provider=mine, weekday=2, start=time(14)).exists()
    assert WorkingHours.objects.filter(provider=other).count() == 7


def test_a_clinician_who_is_no_provider_sees_no_provider_row():
    client = logged_in(ClinicianFactory())
    ProviderFactory()
    listing = client.get(reverse("admin:appointments_provider_changelist"))
    assert listing.status_code == 200
    assert "0 providers" in listing.content.decode() or "0 Providers" in listing.content.decode()
