"""Readings from the app with text PostgreSQL cannot store or times it cannot hold: refused, nothing stored.

A single reading (POST, PATCH) is a 400 naming the field; in a bulk-create each is its item's error and
the rest are stored; a bulk-create whose every item is refused stores nothing at all, not even the
manual-entries source it would have made. The readings list refuses such times as filter bounds and answers
a page beyond PostgreSQL's bigint as any page past the end.
"""

import json

import pytest

from health_metrics.models import DataSource, Reading
from health_metrics.tests.factories import ReadingFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/"
BULK = "/api/v1/health-metrics/bulk-create/"
WHEN = "2026-03-01T08:00:00Z"


def heart_rate(**fields):
    return {"metric_type": "heart_rate", "value": 61, "recorded_at": WHEN, **fields}


def send(client, url, body, method="post"):  # noqa: ANN001
    """As JSON text with its escapes (`\\ud800`), the way a client sends a lone surrogate."""
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def errors(response):  # noqa: ANN001
    return [(error["attr"], error["code"]) for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"notes": "cuff\ud800loose"}, ("notes", "surrogate_character")),
        ({"external_id": "\udc00"}, ("external_id", "surrogate_character")),
        ({"unit": "bpm\ud800"}, ("unit", "surrogate_character")),
        ({"recorded_at": "2026-03-01T08:00:00+18:00"}, ("recorded_at", "invalid_offset")),
        ({"recorded_at": "9999-12-31T23:59:59-12:00"}, ("recorded_at", "out_of_range")),
        ({"ended_at": "2026-03-01T08:30:00-16:00"}, ("ended_at", "invalid_offset")),
    ],
)
def test_a_reading_with_unstorable_text_or_time_is_400_naming_the_field(as_user, fields, expected):
    response = send(as_user, URL, heart_rate(**fields))

    assert response.status_code == 400
    assert errors(response) == [expected]
    assert not Reading.objects.exists()


def test_offsets_up_to_15_59_are_the_readings_own(as_user):
    east = send(as_user, URL, heart_rate(recorded_at="2026-03-01T23:00:00+15:59"))
    west = send(as_user, URL, heart_rate(recorded_at="2026-03-01T08:00:00-15:59", value=62))

    assert (east.status_code, west.status_code) == (201, 201)
    assert [(r["utc_offset_minutes"], r["local_date"]) for r in (east.json(), west.json())] == [
        (959, "2026-03-01"),
        (-959, "2026-03-01"),
    ]


def test_an_edit_to_an_impossible_time_is_400_and_changes_nothing(as_user, user):
    reading = ReadingFactory(user=user, notes="fine")
    before = (reading.recorded_at, reading.utc_offset_minutes, reading.notes)

    for body, expected in [
        ({"recorded_at": "2026-03-01T08:00:00+18:00"}, ("recorded_at", "invalid_offset")),
        ({"notes": "not\ud800fine"}, ("notes", "surrogate_character")),
    ]:
        response = send(as_user, f"{URL}{reading.pk}/", body, method="patch")
        assert response.status_code == 400
        assert errors(response) == [expected]

    reading.refresh_from_db()
    assert (reading.recorded_at, reading.utc_offset_minutes, reading.notes) == before


def test_a_bulk_create_refuses_bad_items_one_by_one_and_stores_the_rest(as_user, user):
    items = [
        heart_rate(notes="a\ud800"),
        heart_rate(recorded_at="2026-03-01T08:01:00+18:00"),
        heart_rate(recorded_at="2026-03-01T08:02:00Z", value=64),
    ]

    response = send(as_user, BULK, {"readings": items})

    assert response.status_code == 200
    assert [(r["status"], (r["error"] or {}).get("code")) for r in response.json()["results"]] == [
        ("error", "surrogate_character"),
        ("error", "invalid_offset"),
        ("created", None),
    ]
    assert list(Reading.objects.values_list("value", flat=True)) == [64]


def test_a_bulk_create_whose_every_item_is_refused_stores_nothing_at_all(as_user, user):
    items = [heart_rate(notes="a\x00"), heart_rate(source="device", recorded_at="9999-12-31T23:59:59-12:00")]

    response = send(as_user, BULK, {"readings": items})

    assert response.status_code == 200
    assert response.json()["errors"] == 2
    assert not Reading.objects.exists()
    assert not DataSource.objects.filter(user=user).exists()  # not even the manual entries' source


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"start_date": "2026-03-01T00:00:00+18:00"}, "start_date"),
        ({"end_date": "9999-12-31T23:59:59-12:00"}, "end_date"),
        ({"start_date": "0001-01-01"}, "start_date"),
    ],
)
def test_the_list_refuses_bounds_postgresql_cannot_hold(as_user, params, attr):
    response = as_user.get(URL, params)

    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == [attr]


@pytest.mark.parametrize("page", [str(2**63), str(10**30), "999"])
def test_a_page_beyond_bigint_is_past_the_end_like_any_other(as_user, user, page):
    ReadingFactory(user=user)

    response = as_user.get(URL, {"page": page})

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
