"""Targets: one active per type, units, ranges, and progress against today's total or the latest value."""

import zoneinfo
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from health_metrics.models import Target
from health_metrics.tests.factories import ReadingFactory, TargetFactory, set_timezone

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/targets/"


def create(client, **body):
    return client.post(URL, body, format="json")


def the_error(response):
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


def record(client, body):
    response = client.post("/api/v1/health-metrics/", body, format="json")
    assert response.status_code == 201, response.json()


def test_a_steps_target_shows_progress_with_todays_total_from_the_highest_priority_source(as_user, user):
    now = timezone.now()
    record(as_user, {"metric_type": "steps", "value": 3000, "recorded_at": now.isoformat(), "source": "device"})
    record(as_user, {"metric_type": "steps", "value": 2000, "recorded_at": now.isoformat(), "source": "manual"})
    yesterday = (now - timedelta(days=1)).isoformat()
    record(as_user, {"metric_type": "steps", "value": 9000, "recorded_at": yesterday, "source": "device"})

    response = create(as_user, metric_type="steps", kind="at_least", target_value=8000)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["metric_type"], body["kind"], body["target_value"], body["is_active"]) == (
        "steps",
        "at_least",
        8000,
        True,
    )
    assert body["start_date"] == timezone.localdate().isoformat()
    assert body["progress"] == {  # the device's 3,000 outranks the manual 2,000: never their sum
        "current": 3000,
        "percent": 37.5,
        "achieved": False,
        "as_of": timezone.localdate().isoformat(),
    }
    listed = as_user.get(URL).json()["results"]
    assert [t["progress"]["current"] for t in listed] == [3000]


def test_a_steps_target_is_achieved_at_the_target(as_user, user):
    record(as_user, {"metric_type": "steps", "value": 8000, "recorded_at": timezone.now().isoformat()})
    body = create(as_user, metric_type="steps", target_value=8000).json()
    assert body["kind"] == "at_least"
    assert body["progress"]["achieved"] is True
    assert body["progress"]["percent"] == 100


def test_todays_total_is_the_owners_local_day(as_user, user):
    set_timezone(user, "Pacific/Kiritimati")  # UTC+14: "today" there is a different date much of the day
    target = TargetFactory(user=user, target_value=1000)
    local_today = timezone.localdate(timezone=zoneinfo.ZoneInfo("Pacific/Kiritimati"))
    ReadingFactory(user=user, metric_type_id=27, value=700, original_unit="{steps}", local_date=local_today)
    ReadingFactory(
        user=user, metric_type_id=27, value=400, original_unit="{steps}", local_date=local_today - timedelta(days=1)
    )
    body = as_user.get(f"{URL}{target.pk}/").json()
    assert body["progress"]["current"] == 700
    assert body["progress"]["as_of"] == local_today.isoformat()


def test_a_target_of_a_non_sum_type_uses_the_latest_reading(as_user, user):
    ReadingFactory(
        user=user, metric_type_id=16, value=82, original_unit="kg", recorded_at=timezone.now() - timedelta(days=3)
    )
    latest = ReadingFactory(
        user=user, metric_type_id=16, value=78, original_unit="kg", recorded_at=timezone.now() - timedelta(days=1)
    )
    body = create(as_user, metric_type="weight", kind="at_most", target_value=80).json()
    assert body["metric_type"] == "body_weight"
    assert body["progress"]["current"] == 78
    assert body["progress"]["achieved"] is True
    assert body["progress"]["percent"] == 102.6  # 80 / 78: one decimal, half up
    assert body["progress"]["as_of"] == latest.recorded_at.isoformat().replace("+00:00", "Z")


def test_a_target_without_readings_has_empty_progress(as_user):
    body = create(as_user, metric_type="heart_rate", kind="range", target_min=55, target_max=75).json()
    assert body["progress"] == {"current": None, "percent": None, "achieved": False, "as_of": None}


def test_a_range_target_is_achieved_inside_the_range(as_user, user):
    ReadingFactory(user=user, value=64)
    body = create(as_user, metric_type="heart_rate", kind="range", target_min=55, target_max=75).json()
    assert body["progress"]["achieved"] is True
    assert body["progress"]["percent"] == 100


def test_a_second_active_target_for_the_type_is_400_not_500(as_user, user):
    assert create(as_user, metric_type="steps", target_value=8000).status_code == 201
    response = create(as_user, metric_type="Steps", target_value=10000)
    assert response.status_code == 400
    error = the_error(response)
    assert (error["attr"], error["code"]) == ("metric_type", "already_active")
    assert list(Target.objects.filter(user=user).values_list("target_value", flat=True)) == [8000]


def test_a_target_of_another_type_is_fine(as_user, user):
    assert create(as_user, metric_type="steps", target_value=8000).status_code == 201
    assert create(as_user, metric_type="water_intake", target_value=2).status_code == 201
    assert Target.objects.filter(user=user).count() == 2


def test_another_person_may_have_their_own_active_target(api_client, user, other_user):
    TargetFactory(user=other_user)
    assert create(bearer(api_client, user), metric_type="steps", target_value=8000).status_code == 201


def test_after_deactivating_a_target_another_may_be_created(as_user, user):
    first = create(as_user, metric_type="steps", target_value=8000).json()
    response = as_user.patch(f"{URL}{first['id']}/", {"is_active": False}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["is_active"] is False
    second = create(as_user, metric_type="steps", target_value=10000)
    assert second.status_code == 201
    assert sorted(Target.objects.filter(user=user).values_list("target_value", "is_active")) == [
        (8000, False),
        (10000, True),
    ]


def test_reactivating_an_old_target_beside_an_active_one_is_400(as_user, user):
    old = TargetFactory(user=user, is_active=False)
    TargetFactory(user=user)
    response = as_user.patch(f"{URL}{old.pk}/", {"is_active": True}, format="json")
    assert response.status_code == 400
    assert the_error(response)["code"] == "already_active"
    old.refresh_from_db()
    assert old.is_active is False


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({"kind": "range", "target_min": 55}, "target_min", "required"),
        ({"kind": "range", "target_max": 75}, "target_min", "required"),
        ({"kind": "range", "target_min": 75, "target_max": 55}, "target_max", "invalid"),
        ({"kind": "range", "target_min": 60, "target_max": 60}, "target_max", "invalid"),
        ({"kind": "at_least"}, "target_value", "required"),
        ({"kind": "at_most"}, "target_value", "required"),
        ({"kind": "sometimes", "target_value": 60}, "kind", "invalid_choice"),
        ({"target_value": 60, "unit": "kg"}, "unit", "invalid_choice"),
        ({"target_value": 60, "start_date": "2026-11-10", "end_date": "2026-11-01"}, "end_date", "invalid"),
    ],
)
def test_a_bad_target_is_400_naming_the_field(as_user, body, attr, code):
    response = create(as_user, metric_type="heart_rate", **body)
    assert response.status_code == 400
    error = the_error(response)
    assert (error["attr"], error["code"]) == (attr, code)
    assert not Target.objects.exists()


def test_an_unknown_type_is_400(as_user):
    response = create(as_user, metric_type="happiness", target_value=10)
    assert response.status_code == 400
    assert the_error(response)["attr"] == "metric_type"
    assert "steps" in the_error(response)["detail"]


def test_a_range_target_has_min_and_max(as_user):
    response = create(as_user, metric_type="heart_rate", kind="range", target_min=55, target_max=75)
    assert response.status_code == 201
    body = response.json()
    assert (body["target_min"], body["target_max"], body["target_value"]) == (55, 75, None)


def test_target_values_in_another_unit_are_stored_in_the_canonical_unit(as_user, user):
    response = create(as_user, metric_type="body_weight", kind="at_most", target_value=150, unit="lb")
    assert response.status_code == 201, response.json()
    assert response.json()["target_value"] == 68.0  # 68.0388555 kg, at weight's one decimal
    assert (response.json()["unit"], response.json()["unit_label"]) == ("kg", "kg")
    assert Target.objects.get(user=user).target_value == pytest.approx(68.0388555, rel=1e-9)


def test_range_target_values_in_fahrenheit_are_stored_in_celsius(as_user, user):
    response = create(as_user, metric_type="temperature", kind="range", target_min=96.8, target_max=99.5, unit="degF")
    assert response.status_code == 201, response.json()
    target = Target.objects.get(user=user)
    assert target.target_min == pytest.approx(36.0, rel=1e-9)
    assert target.target_max == pytest.approx(37.5, rel=1e-9)


def test_an_edit_in_another_unit_is_converted(as_user, user):
    target = TargetFactory(user=user, metric_type_id=16, kind="at_most", target_value=70)
    response = as_user.patch(f"{URL}{target.pk}/", {"target_value": 154, "unit": "lb"}, format="json")
    assert response.status_code == 200, response.json()
    target.refresh_from_db()
    assert target.target_value == pytest.approx(154 * 0.45359237, rel=1e-9)


def test_the_owner_deletes_a_target(as_user, user):
    target = TargetFactory(user=user)
    assert as_user.delete(f"{URL}{target.pk}/").status_code == 204
    assert not Target.objects.exists()


def test_an_outsider_does_not_see_a_target(api_client, user, other_user):
    target = TargetFactory(user=user)
    client = bearer(api_client, other_user)
    assert client.get(URL).json()["count"] == 0
    assert client.get(f"{URL}{target.pk}/").status_code == 404
    assert client.patch(f"{URL}{target.pk}/", {"target_value": 1}, format="json").status_code == 404
    assert client.delete(f"{URL}{target.pk}/").status_code == 404
    target.refresh_from_db()
    assert target.target_value == 8000


def test_a_consented_clinician_sees_but_does_not_change_a_target(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    target = TargetFactory(user=user)
    client = bearer(api_client, clinician)
    assert client.get(f"{URL}?patient={user.pk}").json()["count"] == 1
    assert client.patch(f"{URL}{target.pk}/", {"target_value": 1}, format="json").status_code == 403
    assert client.delete(f"{URL}{target.pk}/").status_code == 403
    target.refresh_from_db()
    assert target.target_value == 8000
