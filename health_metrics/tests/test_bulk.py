"""Bulk recording: per-item results, safe retries, and sum types' daily totals counted once."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from health_metrics.models import DailySummary, Reading
from health_metrics.tests.factories import set_timezone

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/bulk-create/"
DAY = date(2026, 11, 20)


def bulk(client, readings):
    return client.post(URL, {"readings": readings}, format="json")


def heart_rate(value=72, at="2026-11-20T08:00:00Z", **fields):
    return {"metric_type": "heart_rate", "value": value, "recorded_at": at, **fields}


def steps(value, at, **fields):
    return {"metric_type": "steps", "value": value, "recorded_at": at, **fields}


def day_summary(user, type_id, day=DAY):
    return DailySummary.objects.get(user=user, metric_type_id=type_id, local_date=day)


# --- partial success and retries ------------------------------------------------------------


def test_valid_readings_are_stored_when_others_fail(as_user, user):
    response = bulk(
        as_user,
        [
            heart_rate(70),
            heart_rate(400),
            {"metric_type": "no_such_type", "value": 1, "recorded_at": "2026-11-20T08:00:00Z"},
            heart_rate(71, unit="furlongs"),
            heart_rate(72, at="2026-11-20T09:00:00Z"),
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["replaced"], body["duplicate"], body["superseded"], body["errors"]) == (2, 0, 0, 0, 3)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == ["created", "error", "error", "error", "created"]
    assert [r["error"]["attr"] if r["error"] else None for r in results] == [
        None,
        "value",
        "metric_type",
        "unit",
        None,
    ]
    assert results[1]["error"]["code"] == "out_of_range"
    assert results[1]["id"] is None
    stored = {str(pk): value for pk, value in Reading.objects.filter(user=user).values_list("id", "value")}
    assert stored == {results[0]["id"]: 70, results[4]["id"]: 72}


def test_an_item_that_is_not_an_object_is_an_item_error(as_user):
    body = bulk(as_user, [heart_rate(), 42]).json()
    assert [r["status"] for r in body["results"]] == ["created", "error"]
    assert body["results"][1]["error"]["attr"] == "non_field_errors"
    assert Reading.objects.count() == 1


def test_a_null_character_is_an_item_error_and_the_rest_is_stored(as_user, user):
    response = bulk(
        as_user,
        [
            heart_rate(70, at="2026-11-20T08:00:00Z"),
            heart_rate(71, at="2026-11-20T08:01:00Z", notes="a\x00b"),
            heart_rate(72, at="2026-11-20T08:02:00Z", external_id="\x00"),
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["errors"]) == (1, 2)
    assert [r["status"] for r in body["results"]] == ["created", "error", "error"]
    assert [r["error"] for r in body["results"][1:]] == [
        {"attr": "notes", "code": "null_character", "detail": "Must not contain the null character (U+0000)."},
        {"attr": "external_id", "code": "null_character", "detail": "Must not contain the null character (U+0000)."},
    ]
    assert list(Reading.objects.filter(user=user).values_list("value", flat=True)) == [70]


def test_a_retried_batch_stores_nothing_new(as_user):
    batch = [heart_rate(60 + i, at=f"2026-11-20T0{i}:00:00Z", client_id=str(uuid.uuid4())) for i in range(5)]
    first = bulk(as_user, batch).json()
    assert first["created"] == 5
    again = bulk(as_user, batch)
    assert again.status_code == 200
    body = again.json()
    assert (body["created"], body["duplicate"], body["errors"]) == (0, 5, 0)
    assert [r["status"] for r in body["results"]] == ["duplicate"] * 5
    assert [r["id"] for r in body["results"]] == [r["id"] for r in first["results"]]
    assert Reading.objects.count() == 5


def test_a_client_id_twice_in_one_batch_is_stored_once(as_user):
    client_id = str(uuid.uuid4())
    body = bulk(as_user, [heart_rate(70, client_id=client_id), heart_rate(70, client_id=client_id)]).json()
    assert [r["status"] for r in body["results"]] == ["created", "duplicate"]
    assert body["results"][1]["id"] == body["results"][0]["id"]
    assert (body["created"], body["duplicate"]) == (1, 1)
    assert Reading.objects.count() == 1


def test_readings_without_client_ids_are_each_stored(as_user):
    body = bulk(as_user, [heart_rate(70), heart_rate(70, at="2026-11-20T08:01:00Z")]).json()
    assert body["created"] == 2
    assert Reading.objects.count() == 2


def test_the_same_moment_of_the_same_type_from_the_same_source_is_a_duplicate(as_user):
    body = bulk(as_user, [heart_rate(70), heart_rate(71)]).json()
    assert [r["status"] for r in body["results"]] == ["created", "duplicate"]
    assert body["results"][1]["id"] == body["results"][0]["id"]
    assert list(Reading.objects.values_list("value", flat=True)) == [70]


def test_the_same_external_id_from_the_same_source_is_a_duplicate(as_user):
    body = bulk(
        as_user,
        [heart_rate(70, external_id="hk-1"), heart_rate(71, at="2026-11-20T08:05:00Z", external_id="hk-1")],
    ).json()
    assert [r["status"] for r in body["results"]] == ["created", "duplicate"]
    assert body["results"][1]["id"] == body["results"][0]["id"]
    assert Reading.objects.count() == 1


def test_more_than_1000_readings_is_400_and_stores_nothing(as_user):
    response = bulk(as_user, [heart_rate()] * 1001)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["attr"], error["code"]) == ("readings", "max_length")
    assert not Reading.objects.exists()


def test_1000_readings_are_accepted(as_user):
    start = datetime(2026, 11, 20, tzinfo=UTC)
    response = bulk(as_user, [heart_rate(60 + i % 40, (start + timedelta(minutes=i)).isoformat()) for i in range(1000)])
    assert response.status_code == 200
    assert response.json()["created"] == 1000
    assert Reading.objects.count() == 1000


@pytest.mark.parametrize("body", [{}, {"readings": "all of them"}, {"readings": {"0": {}}}])
def test_a_body_without_a_list_of_readings_is_400(as_user, body):
    response = as_user.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "readings"


def test_an_empty_batch_stores_nothing(as_user):
    response = bulk(as_user, [])
    assert response.status_code == 200
    assert response.json() == {
        "created": 0,
        "replaced": 0,
        "duplicate": 0,
        "superseded": 0,
        "errors": 0,
        "results": [],
    }


# --- sum types: a daily total delivered three times counted once ------------------------------------


def test_a_daily_total_delivered_three_times_is_counted_once(as_user, user, django_capture_on_commit_callbacks):
    deliveries = [(3000, "2026-11-20T09:00:00Z"), (5000, "2026-11-20T13:00:00Z"), (8000, "2026-11-20T20:00:00Z")]
    statuses = []
    with django_capture_on_commit_callbacks(execute=True):
        for value, at in deliveries:
            statuses.append(bulk(as_user, [steps(value, at, source="device")]).json()["results"][0]["status"])
    assert statuses == ["created", "replaced", "replaced"]
    rows = Reading.objects.filter(user=user, metric_type_id=27)
    assert [(r.value, r.local_date) for r in rows] == [(8000, DAY)]
    summary = day_summary(user, 27)
    assert (summary.count, summary.sum) == (1, 8000)
    response = as_user.get(
        "/api/v1/health-metrics/summary/?metric_type=steps&period=day&start_date=2026-11-20&end_date=2026-11-20"
    )
    assert response.status_code == 200
    assert [(b["start"], b["sum"]) for b in response.json()["buckets"]] == [("2026-11-20", 8000)]


def test_a_daily_total_delivered_three_times_in_one_batch_is_counted_once(as_user, user):
    body = bulk(
        as_user,
        [
            steps(3000, "2026-11-20T09:00:00Z"),
            steps(5000, "2026-11-20T13:00:00Z"),
            steps(8000, "2026-11-20T20:00:00Z"),
        ],
    ).json()
    assert [r["status"] for r in body["results"]] == ["created", "replaced", "replaced"]
    assert len({r["id"] for r in body["results"]}) == 1
    assert (body["created"], body["replaced"]) == (1, 2)
    assert list(Reading.objects.filter(user=user).values_list("value", flat=True)) == [8000]


def test_an_older_delivery_after_a_newer_one_is_superseded(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        newer = bulk(as_user, [steps(8000, "2026-11-20T20:00:00Z")]).json()["results"][0]
        older = bulk(as_user, [steps(5000, "2026-11-20T13:00:00Z")]).json()
    assert older["superseded"] == 1
    assert older["results"][0]["status"] == "superseded"
    assert older["results"][0]["id"] == newer["id"]
    reading = Reading.objects.get(user=user)
    assert reading.value == 8000
    assert reading.recorded_at.isoformat() == "2026-11-20T20:00:00+00:00"
    assert day_summary(user, 27).sum == 8000


def test_a_replaced_total_takes_the_new_time_and_original_value(as_user, user):
    bulk(as_user, [steps(3000, "2026-11-20T09:00:00Z", notes="morning")])
    bulk(as_user, [steps(5000, "2026-11-20T13:00:00Z", notes="afternoon")])
    reading = Reading.objects.get(user=user)
    assert (reading.value, reading.original_value, reading.notes) == (5000, 5000, "afternoon")
    assert reading.recorded_at.isoformat() == "2026-11-20T13:00:00+00:00"


def test_daily_totals_of_different_days_are_separate(as_user, user):
    bulk(as_user, [steps(3000, "2026-11-19T21:00:00Z"), steps(5000, "2026-11-20T21:00:00Z")])
    assert sorted(Reading.objects.filter(user=user).values_list("local_date", "value")) == [
        (date(2026, 11, 19), 3000),
        (date(2026, 11, 20), 5000),
    ]


def test_daily_totals_of_different_sources_are_kept_apart(as_user, user):
    body = bulk(
        as_user,
        [steps(3000, "2026-11-20T09:00:00Z", source="device"), steps(4000, "2026-11-20T10:00:00Z", source="manual")],
    ).json()
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    assert sorted(Reading.objects.filter(user=user).values_list("data_source__kind", "value")) == [
        ("device", 3000),
        ("manual", 4000),
    ]


def test_the_day_of_a_daily_total_is_the_users_local_day(as_user, user):
    set_timezone(user, "America/New_York")
    # 02:00 UTC on the 21st is 21:00 on the 20th in New York: the same local day as 09:00 EST.
    body = bulk(as_user, [steps(3000, "2026-11-20T09:00:00"), steps(9000, "2026-11-21T02:00:00Z")]).json()
    assert [r["status"] for r in body["results"]] == ["created", "replaced"]
    assert list(Reading.objects.filter(user=user).values_list("local_date", "value")) == [(DAY, 9000)]


def test_interval_step_readings_are_summed_not_replaced(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = bulk(
            as_user,
            [
                steps(1200, "2026-11-20T08:00:00Z", ended_at="2026-11-20T08:30:00Z"),
                steps(3400, "2026-11-20T12:00:00Z", ended_at="2026-11-20T13:00:00Z"),
                steps(900, "2026-11-20T18:00:00Z", ended_at="2026-11-20T18:15:00Z"),
            ],
        ).json()
    assert [r["status"] for r in body["results"]] == ["created", "created", "created"]
    assert Reading.objects.filter(user=user).count() == 3
    summary = day_summary(user, 27)
    assert (summary.count, summary.sum) == (3, 5500)


def test_a_non_sum_type_is_never_replaced(as_user, user):
    body = bulk(as_user, [heart_rate(60, at="2026-11-20T08:00:00Z"), heart_rate(90, at="2026-11-20T09:00:00Z")]).json()
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    assert Reading.objects.filter(user=user).count() == 2


def test_moving_a_daily_total_onto_another_days_total_is_400(as_user, user):
    bulk(as_user, [steps(3000, "2026-11-19T20:00:00Z"), steps(5000, "2026-11-20T20:00:00Z")])
    earlier = Reading.objects.get(user=user, local_date=date(2026, 11, 19))
    response = as_user.patch(
        f"/api/v1/health-metrics/{earlier.pk}/", {"recorded_at": "2026-11-20T21:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["attr"], error["code"]) == ("recorded_at", "unique")
    earlier.refresh_from_db()
    assert earlier.local_date == date(2026, 11, 19)


def test_an_older_delivery_to_the_single_endpoint_answers_200_with_the_stored_total(as_user, user):
    assert (
        as_user.post("/api/v1/health-metrics/", steps(8000, "2026-11-20T20:00:00Z"), format="json").status_code == 201
    )
    response = as_user.post("/api/v1/health-metrics/", steps(5000, "2026-11-20T13:00:00Z"), format="json")
    assert response.status_code == 200
    assert response.json()["value"] == 8000
    assert list(Reading.objects.filter(user=user).values_list("value", flat=True)) == [8000]


@pytest.mark.parametrize("source", [{}, [], ["manual"], 7, True])
def test_a_source_that_is_not_a_string_is_the_items_error_not_a_crash(as_user, user, source):
    """Found by `make fuzz`: a JSON object or list as `source` raised TypeError (unhashable) and answered 500."""
    response = bulk(as_user, [heart_rate(70, source=source), heart_rate(71, at="2026-11-20T09:00:00Z")])

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["error", "created"]
    assert (results[0]["error"]["attr"], results[0]["error"]["code"]) == ("source", "invalid_choice")
    assert Reading.objects.filter(user=user).count() == 1


def test_a_single_reading_with_an_object_as_source_answers_400_naming_it(as_user, user):
    response = as_user.post("/api/v1/health-metrics/", heart_rate(70, source={"kind": "manual"}), format="json")

    assert response.status_code == 400
    assert [e["attr"] for e in response.json()["errors"]] == ["source"]
    assert not Reading.objects.filter(user=user).exists()
