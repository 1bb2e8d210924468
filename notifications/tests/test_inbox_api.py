"""The inbox and preferences over the API: a person's own only, constant queries."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from notifications.models import Preference, QuietHours
from notifications.tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/"


def test_the_inbox_is_newest_first_and_filters_by_kind_and_read_state(user, as_user):
    now = timezone.now()
    old = NotificationFactory(recipient=user, kind="message", title="Old")
    new = NotificationFactory(recipient=user, kind="health_alert", title="New")
    read = NotificationFactory(recipient=user, kind="health_alert", title="Read", read_at=now)
    for n, minutes in ((old, 30), (new, 1), (read, 10)):
        n.created_at = now - timedelta(minutes=minutes)
        n.save(update_fields=["created_at"])

    assert [n["title"] for n in as_user.get(URL).json()["results"]] == ["New", "Read", "Old"]
    assert [n["title"] for n in as_user.get(URL, {"kind": "message"}).json()["results"]] == ["Old"]
    assert [n["title"] for n in as_user.get(URL, {"is_read": "false"}).json()["results"]] == ["New", "Old"]
    assert [n["title"] for n in as_user.get(URL, {"is_read": "true"}).json()["results"]] == ["Read"]
    bad = as_user.get(URL, {"kind": "gossip"})
    assert bad.status_code == 400
    assert "Valid choices: health_alert_critical" in bad.json()["errors"][0]["detail"]


def test_reading_one_and_all_moves_the_unread_count(user, as_user):
    first, _ = NotificationFactory(recipient=user), NotificationFactory(recipient=user)
    assert as_user.get(f"{URL}unread-count/").json() == {"unread": 2}

    response = as_user.patch(f"{URL}{first.pk}/", {"is_read": True}, format="json")
    assert response.status_code == 200
    assert response.json()["is_read"] is True
    assert as_user.get(f"{URL}unread-count/").json() == {"unread": 1}

    assert as_user.post(f"{URL}mark-all-read/").json() == {"unread": 0}
    assert as_user.get(f"{URL}unread-count/").json() == {"unread": 0}
    assert as_user.patch(f"{URL}{first.pk}/", {"is_read": "perhaps"}, format="json").status_code == 400


def test_another_persons_notification_is_404_and_left_unread(user, other_user, api_client):
    from conftest import bearer

    theirs = NotificationFactory(recipient=other_user)
    client = bearer(api_client, user)

    assert client.get(f"{URL}{theirs.pk}/").status_code == 404
    assert client.patch(f"{URL}{theirs.pk}/", {"is_read": True}, format="json").status_code == 404
    client.post(f"{URL}mark-all-read/")
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_the_inbox_costs_the_same_queries_for_more_notifications(user, as_user, django_assert_max_num_queries):
    NotificationFactory.create_batch(2, recipient=user)
    with django_assert_max_num_queries(6) as few:
        as_user.get(URL)
    NotificationFactory.create_batch(30, recipient=user)
    with django_assert_max_num_queries(len(few)):
        assert len(as_user.get(URL).json()["results"]) == 20


def test_preferences_turn_channels_off_and_set_quiet_hours(user, as_user):
    response = as_user.put(
        f"{URL}preferences/",
        {"kinds": {"message": {"email": False}}, "quiet_hours": {"start": "22:00", "end": "07:00"}},
        format="json",
    )

    assert response.status_code == 200
    kinds = {k["kind"]: k for k in response.json()["kinds"]}
    assert kinds["message"]["channels"] == {"in_app": True, "push": True, "email": False}
    assert kinds["health_alert_critical"]["mutable"] is False
    assert response.json()["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert Preference.objects.get(user=user, kind="message", channel="email").enabled is False
    assert as_user.put(f"{URL}preferences/", {"quiet_hours": None}, format="json").json()["quiet_hours"] is None
    assert not QuietHours.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"kinds": {"health_alert_critical": {"email": False}}}, "cannot be turned off"),
        ({"kinds": {"gossip": {"email": False}}}, "Valid kinds: health_alert_critical"),
        ({"kinds": {"message": {"pigeon": False}}}, "Valid channels: push, email"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "Must differ from start"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "Time has wrong format"),
    ],
)
def test_bad_preferences_are_400_naming_the_problem(as_user, body, detail):
    response = as_user.put(f"{URL}preferences/", body, format="json")

    assert response.status_code == 400
    assert detail in response.json()["errors"][0]["detail"]


def test_a_consented_clinician_messages_a_patient_and_an_outsider_cannot(user, api_client):
    from accounts.models import AccessLog
    from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
    from conftest import bearer

    clinician = ClinicianFactory(email="dr.writer@example.org", first_name="Mei", last_name="Chen")
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    stranger = ClinicianFactory(email="dr.stranger@example.org")

    sent = bearer(api_client, clinician).post(
        f"{URL}messages/", {"patient": str(user.pk), "text": "Please book a follow-up."}, format="json"
    )
    assert sent.status_code == 201
    assert (sent.json()["kind"], sent.json()["title"]) == ("message", "Message from Mei Chen")
    inbox = bearer(APIClient(), user).get(URL).json()["results"]
    assert [n["body"] for n in inbox] == ["Please book a follow-up."]
    assert AccessLog.objects.filter(actor=clinician, patient=user, resource="message", action="create").exists()

    refused = bearer(APIClient(), stranger).post(
        f"{URL}messages/", {"patient": str(user.pk), "text": "Hi"}, format="json"
    )
    assert refused.status_code == 404
    by_patient = bearer(APIClient(), user).post(
        f"{URL}messages/", {"patient": str(user.pk), "text": "Hi"}, format="json"
    )
    assert by_patient.status_code == 404  # to oneself: no patient of yours
    assert (
        bearer(APIClient(), clinician).post(f"{URL}messages/", {"patient": str(user.pk)}, format="json").status_code
        == 400
    )
