"""The readings list: newest first, paginated, filtered by type, source and local days or instants."""

import pytest

from health_metrics.tests.factories import set_timezone

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/"


@pytest.fixture
def readings(as_user, user):
    """Four readings of a New York user: 60 late on the 19th, 61 and 62 on the 20th, a weight on the 21st."""
    set_timezone(user, "America/New_York")
    response = as_user.post(
        f"{URL}bulk-create/",
        {
            "readings": [
                {"metric_type": "hr", "value": 60, "recorded_at": "2026-11-19T23:30:00"},
                {"metric_type": "hr", "value": 61, "recorded_at": "2026-11-20T00:30:00"},
                {"metric_type": "hr", "value": 62, "recorded_at": "2026-11-20T23:30:00"},
                {"metric_type": "weight", "value": 80, "recorded_at": "2026-11-21T00:30:00", "source": "device"},
            ]
        },
        format="json",
    )
    assert response.json()["created"] == 4


def values(client, **query):
    response = client.get(URL, query)
    assert response.status_code == 200, response.json()
    return [r["value"] for r in response.json()["results"]]


def test_the_list_is_newest_first(as_user, readings):
    body = as_user.get(URL).json()
    assert body["count"] == 4
    assert [r["value"] for r in body["results"]] == [80, 62, 61, 60]


def test_the_list_is_paginated(as_user, readings):
    body = as_user.get(URL, {"page_size": 3}).json()
    assert (body["count"], len(body["results"]), body["previous"]) == (4, 3, None)
    assert body["next"].endswith("?page=2&page_size=3")
    assert values(as_user, page_size=3, page=2) == [60]


def test_the_list_filters_by_type_code_or_alias(as_user, readings):
    assert values(as_user, metric_type="pulse") == [62, 61, 60]
    assert values(as_user, metric_type="Body Weight") == [80]


def test_the_list_filters_by_source(as_user, readings):
    assert values(as_user, source="device") == [80]
    assert values(as_user, source="manual") == [62, 61, 60]


def test_the_list_filters_by_instants_with_offsets(as_user, readings):
    assert values(as_user, start_date="2026-11-20T05:00:00-05:00") == [80, 62]
    assert values(as_user, end_date="2026-11-20T00:30:00-05:00") == [61, 60]


def test_the_list_filters_by_whole_local_days(as_user, readings):
    assert values(as_user, start_date="2026-11-20", end_date="2026-11-20") == [62, 61]


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ({"metric_type": "x"}, "metric_type"),
        ({"source": "x"}, "source"),
        ({"start_date": "2026-11-20T05:00:00"}, "start_date"),
        ({"end_date": "soon"}, "end_date"),
    ],
)
def test_a_bad_filter_is_400(as_user, readings, query, attr):
    response = as_user.get(URL, query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr


def test_a_reading_shows_its_fields(as_user, user, readings):
    body = as_user.get(URL, {"metric_type": "weight"}).json()["results"][0]
    shown = ("metric_type", "value", "unit", "unit_label", "display_value", "display_unit", "source", "local_date")
    assert {k: body[k] for k in shown} == {
        "metric_type": "body_weight",
        "value": 80.0,
        "unit": "kg",
        "unit_label": "kg",
        "display_value": "80.0",
        "display_unit": "kg",
        "source": "device",
        "local_date": "2026-11-21",
    }
    assert (body["utc_offset_minutes"], body["recorded_at"]) == (-300, "2026-11-21T05:30:00Z")
    assert body["patient"] == str(user.pk)
    assert (body["systolic"], body["diastolic"]) == (None, None)


def test_the_list_needs_authentication(api_client):
    assert api_client.get(URL).status_code == 401
