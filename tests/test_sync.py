"""Offline sync (issue #11 §3): `changes/?since=` for readings, targets and devices (accounts/sync.py).

The feed only answers changes of transactions that have ended, so these tests commit (transaction=True):
inside one test transaction nothing would ever be old enough. Another test process's open transaction can
hold the feed back for a moment (transaction ids are the cluster's), so clients sync until they agree.
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from django.core import signing
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Change
from accounts.sync import SALT, purge_old_changes
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from conftest import bearer
from tests.processes import DEADLINE, database_url

pytestmark = pytest.mark.django_db(transaction=True)

COLLECTIONS = {
    "readings": ("/api/v1/health-metrics/changes/", "/api/v1/health-metrics/"),
    "targets": ("/api/v1/health-metrics/targets/changes/", "/api/v1/health-metrics/targets/"),
    "devices": ("/api/v1/iot-devices/changes/", "/api/v1/iot-devices/"),
}


class Mirror:
    """What an offline app keeps: per collection, the objects by id, and the cursor it last got."""

    def __init__(self, client: APIClient) -> None:
        self.client = client
        self.objects: dict[str, dict[str, dict]] = {name: {} for name in COLLECTIONS}
        self.cursors: dict[str, str | None] = dict.fromkeys(COLLECTIONS)

    def sync(self) -> None:
        for name, (changes, detail) in COLLECTIONS.items():
            while True:
                query = {"since": self.cursors[name]} if self.cursors[name] else {}
                response = self.client.get(changes, query)
                assert response.status_code == 200, response.content
                page = response.json()
                for object_id in page["created"] + page["updated"]:
                    fetched = self.client.get(f"{detail}{object_id}/")
                    if fetched.status_code == 404:  # deleted since: its tombstone follows
                        self.objects[name].pop(object_id, None)
                        continue
                    self.objects[name][object_id] = fetched.json()
                for object_id in page["deleted"]:
                    self.objects[name].pop(object_id, None)
                self.cursors[name] = page["next"]
                if not page["has_more"]:
                    break


def server_state(client: APIClient) -> dict[str, dict[str, dict]]:
    state = {}
    for name, (_, detail) in COLLECTIONS.items():
        listing = client.get(detail, {"page_size": 1000}).json()
        state[name] = {item["id"]: client.get(f"{detail}{item['id']}/").json() for item in listing["results"]}
    return state


def sync_until_equal(*mirrors: Mirror, server: APIClient) -> dict:
    """Sync every mirror until each equals the server; fails after DEADLINE (a wait, not a timed assertion)."""
    expected = server_state(server)
    deadline = time.monotonic() + DEADLINE
    while True:
        for mirror in mirrors:
            mirror.sync()
        if all(mirror.objects == expected for mirror in mirrors):
            return expected
        assert time.monotonic() < deadline, "the mirrors never caught up with the server"
        time.sleep(0.1)


def reading(metric_type="heart_rate", value=72, at="2026-11-20T08:00:00Z", **fields):
    return {"metric_type": metric_type, "value": value, "recorded_at": at, **fields}


@pytest.fixture
def patient():
    return UserFactory(email="sync@example.org")


def client_of(user) -> APIClient:
    return bearer(APIClient(), user)


def test_two_clients_sync_through_edits_and_deletions_and_end_equal_to_the_server(patient):
    phone, tablet = Mirror(client_of(patient)), Mirror(client_of(patient))
    app = phone.client

    first = app.post("/api/v1/health-metrics/", reading(value=71), format="json").json()
    app.post(
        "/api/v1/health-metrics/bulk-create/",
        {"readings": [reading(value=v, at=f"2026-11-20T1{v % 10}:00:00Z") for v in range(60, 66)]},
        format="json",
    )
    target = app.post(
        "/api/v1/health-metrics/targets/",
        {"metric_type": "steps", "kind": "at_least", "target_value": 8000},
        format="json",
    ).json()
    sync_until_equal(phone, tablet, server=app)
    assert len(phone.objects["readings"]) == 7
    assert set(phone.objects["targets"]) == {target["id"]}

    # A device is registered and uploads a batch through the real ingest path (bulk insert, conflicts skipped).
    device = app.post("/api/v1/iot-devices/", {"name": "Cuff", "device_type": "blood_pressure_monitor"}, format="json")
    upload = APIClient()
    upload.credentials(HTTP_AUTHORIZATION=f"Api-Key {device.json()['api_key']}")
    batch = {
        "batch_id": "cuff-1",
        "readings": [
            {
                "metric_type": "blood_pressure",
                "systolic": 120 + i,
                "diastolic": 80,
                "recorded_at": f"2026-11-21T0{i}:00:00Z",
            }
            for i in range(3)
        ],
    }
    assert upload.post("/api/v1/iot-devices/ingest/", batch, format="json").status_code == 202
    phone.sync()

    # The tablet edits and deletes; the phone renames the device and changes the target; both sync.
    assert (
        tablet.client.patch(f"/api/v1/health-metrics/{first['id']}/", {"value": 75}, format="json").status_code == 200
    )
    doomed = next(rid for rid in tablet.objects["readings"] if rid != first["id"])
    assert tablet.client.delete(f"/api/v1/health-metrics/{doomed}/").status_code == 204
    device_id = device.json()["id"]
    assert app.patch(f"/api/v1/iot-devices/{device_id}/", {"name": "Cuff (kitchen)"}, format="json").status_code == 200
    assert (
        app.patch(f"/api/v1/health-metrics/targets/{target['id']}/", {"target_value": 9000}, format="json").status_code
        == 200
    )
    tablet.sync()
    assert app.delete(f"/api/v1/health-metrics/targets/{target['id']}/").status_code == 204

    final = sync_until_equal(phone, tablet, server=app)
    assert doomed not in phone.objects["readings"]
    assert phone.objects["readings"][first["id"]]["value"] == 75
    assert len(final["readings"]) == 7 - 1 + 3
    assert final["targets"] == {}
    assert phone.objects["devices"][device_id]["name"] == "Cuff (kitchen)"


def test_an_answer_sorts_ids_into_created_updated_and_deleted(patient):
    app = client_of(patient)
    start = app.get("/api/v1/health-metrics/changes/").json()
    assert (start["created"], start["has_more"]) == ([], False)

    kept = app.post("/api/v1/health-metrics/", reading(value=70), format="json").json()["id"]
    edited = app.post("/api/v1/health-metrics/", reading(value=71, at="2026-11-20T09:00:00Z"), format="json").json()
    gone = app.post("/api/v1/health-metrics/", reading(value=72, at="2026-11-20T10:00:00Z"), format="json").json()
    middle = wait_for_changes(app, start["next"], {kept, edited["id"], gone["id"]})
    app.patch(f"/api/v1/health-metrics/{edited['id']}/", {"notes": "after a run"}, format="json")
    app.delete(f"/api/v1/health-metrics/{gone['id']}/")

    page = wait_for_changes(app, middle["next"], {edited["id"], gone["id"]})
    assert (page["created"], page["updated"], page["deleted"]) == ([], [edited["id"]], [gone["id"]])


def wait_for_changes(client: APIClient, since: str, ids: set[str]) -> dict:
    """The next page once it names every id in `ids` (an older transaction elsewhere may hold it back)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        page = client.get("/api/v1/health-metrics/changes/", {"since": since}).json()
        if ids <= set(page["created"] + page["updated"] + page["deleted"]):
            return page
        assert time.monotonic() < deadline, f"the feed never named {ids}: {page}"
        time.sleep(0.1)


def test_a_change_committed_late_is_not_skipped(patient):
    """A transaction that wrote first and commits last: its change has the lower id, yet no cursor passes it."""
    app = client_of(patient)
    cursor = app.get("/api/v1/health-metrics/changes/").json()["next"]
    source = app.post("/api/v1/health-metrics/", reading(value=60), format="json").json()["data_source"]
    wait_for_changes(app, cursor, set())

    def insert(conn: psycopg.Connection, value: int, hour: int) -> str:
        reading_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO health_metrics_reading (id, user_id, metric_type_id, value, original_value, original_unit,"
            " recorded_at, utc_offset_minutes, local_date, data_source_id, external_id, is_daily_total,"
            " is_abnormal, notes, created_at, updated_at) "
            "VALUES (%s, %s, 2, %s, %s, '/min', %s, 0, '2026-11-22', %s, '', false, false, '', now(), now())",
            (reading_id, patient.pk, value, value, f"2026-11-22T{hour:02d}:00:00Z", source),
        )
        return str(reading_id)

    with psycopg.connect(database_url()) as slow, psycopg.connect(database_url(), autocommit=True) as fast:
        late = insert(slow, 61, 1)  # the slow transaction writes first: the lower change id
        early = insert(fast, 62, 2)  # committed at once
        page = app.get("/api/v1/health-metrics/changes/", {"since": cursor}).json()
        assert late not in page["created"]
        assert early not in page["created"]  # held back while an older transaction may still add changes
        slow.commit()

    page = wait_for_changes(app, cursor, {late, early})
    assert {late, early} <= set(page["created"])


def test_a_bad_or_foreign_cursor_is_400_naming_since(patient):
    app = client_of(patient)
    other = client_of(UserFactory(email="other@example.org"))
    foreign = other.get("/api/v1/health-metrics/changes/").json()["next"]
    targets_cursor = app.get("/api/v1/health-metrics/targets/changes/").json()["next"]

    for since in ["nonsense", foreign, targets_cursor, foreign[:-2] + "xx"]:
        response = app.get("/api/v1/health-metrics/changes/", {"since": since})
        assert response.status_code == 400, since
        (error,) = response.json()["errors"]
        assert (error["attr"], error["code"]) == ("since", "invalid")


def test_a_cursor_older_than_the_history_kept_is_410(patient, settings):
    payload = {"k": "f", "t": 1, "i": 1, "u": str(patient.pk), "c": "readings", "at": int(time.time()) - 90 * 86400}
    response = client_of(patient).get("/api/v1/health-metrics/changes/", {"since": signing.dumps(payload, salt=SALT)})

    assert response.status_code == 410
    assert response.json()["errors"][0]["code"] == "cursor_expired"


def test_another_persons_changes_are_invisible_and_a_consented_clinician_reads_the_patients(patient):
    app = client_of(patient)
    own = app.post("/api/v1/health-metrics/", reading(), format="json").json()["id"]
    stranger = client_of(UserFactory(email="stranger@example.org"))
    assert stranger.get("/api/v1/health-metrics/changes/").json()["created"] == []
    assert stranger.get("/api/v1/health-metrics/changes/", {"patient": str(patient.pk)}).status_code == 404

    clinician = ClinicianFactory(email="dr.sync@example.org")
    CareTeamGrantFactory(patient=patient, clinician=clinician)
    answer = client_of(clinician).get("/api/v1/health-metrics/changes/", {"patient": str(patient.pk)})
    assert answer.status_code == 200
    assert answer.json()["created"] == [own]


def test_the_feed_costs_the_same_queries_for_more_changes(patient, django_assert_max_num_queries):
    app = client_of(patient)
    cursor = app.get("/api/v1/health-metrics/changes/").json()["next"]
    stored = app.post(
        "/api/v1/health-metrics/bulk-create/",
        {"readings": [reading(value=60 + i, at=f"2026-11-20T{i:02d}:00:00Z") for i in range(20)]},
        format="json",
    ).json()
    wait_for_changes(app, cursor, {item["id"] for item in stored["results"]})
    with django_assert_max_num_queries(6):
        many = app.get("/api/v1/health-metrics/changes/", {"since": cursor})
    with django_assert_max_num_queries(6):
        snapshot = app.get("/api/v1/health-metrics/changes/")
    assert len(many.json()["created"]) == 20
    assert len(snapshot.json()["created"]) == 20


def test_old_change_rows_are_purged_after_the_retention(patient, settings):
    client_of(patient).post("/api/v1/health-metrics/", reading(), format="json")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_change SET changed_at = now() - interval '91 days'")
    Change.objects.create(user_id=patient.pk, collection="readings", object_id=uuid.uuid4(), op="delete")

    assert purge_old_changes() == 1
    assert Change.objects.count() == 1
