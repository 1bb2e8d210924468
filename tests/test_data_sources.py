"""Data sources across apps (manual entries, devices, exports): a day's total is one source's, never a sum."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from health_metrics.ingest import ingest_readings, record_readings
from health_metrics.models import DailySummary, DataSource, PeriodSummary, Reading
from health_metrics.scoring import compute_health_score
from health_metrics.services import app_data_source, recompute_daily_summaries
from health_metrics.tests.factories import ReadingFactory
from iot_devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/"
SOURCES = f"{URL}sources/"
STEPS = 27
DAY = date(2026, 3, 10)


def steps(value, hour=20, day=DAY, **fields):
    """A running steps total of a UTC patient, at `hour` on `day`."""
    at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return {"metric_type": "steps", "value": value, "recorded_at": at.isoformat(), **fields}


def ingest(source, *items):
    outcome = ingest_readings(data_source=source, items=list(items))
    assert [r.status for r in outcome.results] == ["created"] * len(items), outcome.results
    return outcome


def day_total(user, day=DAY):
    recompute_daily_summaries(user_id=user.pk, days=[(STEPS, day)])
    row = DailySummary.objects.get(user=user, metric_type_id=STEPS, local_date=day)
    return row.sum, row.count, row.reading_count


# --- Two step counters, a manual total, priorities -----------------------------------------------


def test_two_step_counters_of_one_person_keep_their_own_daily_totals(user):
    watch, ring = DeviceFactory(owner=user), DeviceFactory(owner=user)
    ingest(watch.data_source, steps(6000))
    ingest(ring.data_source, steps(4500))
    stored = Reading.objects.filter(user=user).values_list("data_source_id", "value")
    assert sorted(stored, key=lambda row: row[1]) == [(ring.data_source_id, 4500), (watch.data_source_id, 6000)]


def test_a_later_total_from_the_same_counter_replaces_its_earlier_one(user):
    watch = DeviceFactory(owner=user)
    ingest(watch.data_source, steps(6000, hour=18))
    outcome = ingest_readings(data_source=watch.data_source, items=[steps(7000, hour=21)])
    assert [r.status for r in outcome.results] == ["replaced"]
    assert list(Reading.objects.filter(user=user).values_list("value", flat=True)) == [7000]


def test_the_day_takes_the_higher_priority_counter_not_the_sum(user):
    watch, ring = DeviceFactory(owner=user), DeviceFactory(owner=user)
    ring.data_source.priority = 45
    ring.data_source.save()
    ingest(watch.data_source, steps(6000))
    ingest(ring.data_source, steps(4500))
    assert day_total(user) == (4500, 1, 2)


def test_counters_of_equal_priority_give_the_day_to_the_source_made_first(user):
    watch, ring = DeviceFactory(owner=user), DeviceFactory(owner=user)
    ingest(ring.data_source, steps(4500))
    ingest(watch.data_source, steps(6000))
    assert watch.data_source.created_at < ring.data_source.created_at
    assert day_total(user) == (6000, 1, 2)


def test_a_manual_total_and_a_device_total_give_the_device_total_not_the_sum(user):
    watch = DeviceFactory(owner=user)
    record_readings(user=user, items=[steps(9000)])
    ingest(watch.data_source, steps(6000, hour=21))
    assert day_total(user) == (6000, 1, 2)


def test_a_day_with_only_a_manual_total_takes_it(user):
    DeviceFactory(owner=user)
    record_readings(user=user, items=[steps(9000)])
    assert day_total(user) == (9000, 1, 1)


def test_a_week_adds_up_the_merged_days(user):
    watch = DeviceFactory(owner=user)
    monday = date(2026, 3, 9)
    record_readings(user=user, items=[steps(9000, day=monday), steps(3000, day=monday + timedelta(days=1))])
    ingest(watch.data_source, steps(6000, day=monday))
    recompute_daily_summaries(user_id=user.pk, days=[(STEPS, monday), (STEPS, monday + timedelta(days=1))])
    week = PeriodSummary.objects.get(user=user, metric_type_id=STEPS, period="week", start=monday)
    assert (week.sum, week.count) == (9000, 2)  # 6,000 from the watch on Monday, 3,000 by hand on Tuesday


def test_other_types_count_every_sources_readings(user):
    watch = DeviceFactory(owner=user)
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    record_readings(user=user, items=[{"metric_type": "heart_rate", "value": 60, "recorded_at": at.isoformat()}])
    ingest(watch.data_source, {"metric_type": "heart_rate", "value": 80, "recorded_at": at.isoformat()})
    recompute_daily_summaries(user_id=user.pk, days=[(2, DAY)])
    row = DailySummary.objects.get(user=user, metric_type_id=2, local_date=DAY)
    assert (row.count, row.mean, row.reading_count) == (2, 70, 2)


# --- Every way of reading a day reads the merged value --------------------------------------------


@pytest.fixture
def merged_today(user, django_capture_on_commit_callbacks):
    """Today (UTC): 9,000 steps typed in by hand, 6,000 from the watch; the watch's total is the day's."""
    watch = DeviceFactory(owner=user)
    now = timezone.now().replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        record_readings(
            user=user,
            items=[{"metric_type": "steps", "value": 9000, "recorded_at": (now - timedelta(minutes=2)).isoformat()}],
        )
        ingest_readings(
            data_source=watch.data_source,
            items=[{"metric_type": "steps", "value": 6000, "recorded_at": (now - timedelta(minutes=1)).isoformat()}],
        )
    return watch


def test_the_day_summary_shows_the_device_total(as_user, merged_today):
    today = timezone.localdate().isoformat()
    body = as_user.get(
        f"{URL}summary/", {"metric_type": "steps", "period": "day", "start_date": today, "end_date": today}
    ).json()
    assert [(b["start"], b["count"], b["sum"]) for b in body["buckets"]] == [(today, 1, 6000)]


def test_stats_count_the_device_total_only(as_user, merged_today):
    (row,) = as_user.get(f"{URL}stats/").json()
    assert (row["metric_type"], row["count"], row["mean"], row["min"], row["max"]) == ("steps", 1, 6000, 6000, 6000)
    assert row["latest"]["value"] == 6000


def test_a_steps_targets_progress_is_the_device_total(as_user, merged_today):
    response = as_user.post(f"{URL}targets/", {"metric_type": "steps", "target_value": 8000}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["progress"]["current"], response.json()["progress"]["percent"]) == (6000, 75)


def test_the_scores_activity_is_the_device_total(user, merged_today):
    score = compute_health_score(user=user, local_date=timezone.localdate())
    (activity,) = [part for part in score.parts if part["name"] == "activity"]
    assert (activity["score"], activity["detail"]) == (75, "6,000 steps of 8,000 (default goal).")


def test_the_csv_export_has_the_device_total_only(as_user, merged_today):
    today = timezone.localdate().isoformat()
    response = as_user.get(f"{URL}export/", {"format": "csv", "start_date": today, "end_date": today})
    lines = b"".join(response.streaming_content).decode().split("\r\n")
    assert len(lines) == 3  # the header, one reading, the final newline
    assert lines[1].split(",")[6] == "6000"
    assert lines[1].split(",")[-2:] == ["device", str(merged_today.data_source_id)]


def test_the_readings_list_still_counts_and_shows_both_sources_totals(as_user, merged_today):
    body = as_user.get(URL).json()
    assert body["count"] == 2  # from the rollups' reading_count: every source's readings
    assert sorted((r["source"], r["value"]) for r in body["results"]) == [("device", 6000), ("manual", 9000)]


def test_raising_the_manual_priority_through_the_api_gives_the_day_to_the_manual_total(
    as_user, user, merged_today, django_capture_on_commit_callbacks
):
    manual = app_data_source(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user.patch(f"{SOURCES}{manual.pk}/", {"priority": 50}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["priority"] == 50
    today = timezone.localdate().isoformat()
    body = as_user.get(
        f"{URL}summary/", {"metric_type": "steps", "period": "day", "start_date": today, "end_date": today}
    ).json()
    assert [(b["count"], b["sum"]) for b in body["buckets"]] == [(1, 9000)]


# --- Readings carry their source ------------------------------------------------------------------


def test_a_posted_reading_lands_on_the_users_manual_source(as_user, user):
    at = "2026-03-10T09:00:00Z"
    response = as_user.post(URL, {"metric_type": "heart_rate", "value": 70, "recorded_at": at}, format="json")
    assert response.status_code == 201, response.json()
    manual = DataSource.objects.get(user=user)
    assert (manual.kind, manual.name, manual.priority, manual.is_app_default) == ("manual", "Manual entry", 10, True)
    assert (response.json()["source"], response.json()["data_source"]) == ("manual", str(manual.pk))


def test_a_posted_import_reading_lands_on_the_users_import_source(as_user, user):
    at = "2026-03-10T09:00:00Z"
    body = {"metric_type": "heart_rate", "value": 70, "recorded_at": at, "source": "import"}
    response = as_user.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    source = DataSource.objects.get(user=user, kind="import")
    assert (source.priority, response.json()["data_source"]) == (20, str(source.pk))
    assert as_user.post(URL, body | {"recorded_at": "2026-03-10T10:00:00Z"}, format="json").status_code == 201
    assert DataSource.objects.filter(user=user).count() == 1


def test_the_readings_list_shows_each_readings_source_and_kind(as_user, user):
    watch = DeviceFactory(owner=user)
    mine = ReadingFactory(user=user, recorded_at=timezone.now() - timedelta(hours=2))
    theirs = ReadingFactory(user=user, data_source=watch.data_source)
    rows = as_user.get(URL).json()["results"]
    assert [(r["id"], r["source"], r["data_source"]) for r in rows] == [
        (str(theirs.pk), "device", str(watch.data_source_id)),
        (str(mine.pk), "manual", str(mine.data_source_id)),
    ]


def test_the_list_filters_by_device_data_source_and_kind(as_user, user):
    watch = DeviceFactory(owner=user)
    ReadingFactory(user=user)
    from_watch = ReadingFactory(user=user, data_source=watch.data_source)
    for params in ({"device": watch.pk}, {"data_source": watch.data_source_id}, {"source": "device"}):
        body = as_user.get(URL, params).json()
        assert (body["count"], [r["id"] for r in body["results"]]) == (1, [str(from_watch.pk)]), params


def test_a_device_registered_through_the_api_gets_its_own_source(as_user, user):
    response = as_user.post("/api/v1/iot-devices/", {"name": "Left wrist"}, format="json")
    assert response.status_code == 201, response.json()
    source = DataSource.objects.get(device__pk=response.json()["id"])
    assert (source.user, source.kind, source.name, source.priority) == (user, "device", "Left wrist", 40)
    assert response.json()["data_source"] == str(source.pk)


def test_device_batch_readings_land_on_the_devices_source(user):
    from iot_devices.services import process_batch
    from iot_devices.tests.factories import IngestBatchFactory

    watch = DeviceFactory(owner=user)
    payload = b'[{"metric_type":"heart_rate","recorded_at":"2026-03-10T09:00:00Z","value":70}]'
    batch = IngestBatchFactory(device=watch, payload=payload, reading_count=1)
    assert process_batch(batch_id=batch.pk).accepted == 1
    assert list(Reading.objects.values_list("data_source_id", flat=True)) == [watch.data_source_id]


# --- Uniqueness ----------------------------------------------------------------------------------


def test_one_reading_per_source_type_and_moment(user):
    at = timezone.now() - timedelta(hours=1)
    ReadingFactory(user=user, recorded_at=at)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadingFactory(user=user, recorded_at=at)
    ReadingFactory(user=user, recorded_at=at, data_source=DeviceFactory(owner=user).data_source)
    ReadingFactory(user=user, recorded_at=at, metric_type_id=3, original_unit="/min")
    assert Reading.objects.count() == 3


def test_one_reading_per_source_and_external_id(user):
    ReadingFactory(user=user, external_id="hk-1", recorded_at=timezone.now() - timedelta(hours=2))
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadingFactory(user=user, external_id="hk-1")
    ReadingFactory(user=user, external_id="hk-1", data_source=DeviceFactory(owner=user).data_source)
    ReadingFactory(user=user, external_id="", recorded_at=timezone.now() - timedelta(hours=3))
    ReadingFactory(user=user, external_id="", recorded_at=timezone.now() - timedelta(hours=4))
    assert Reading.objects.count() == 4


def test_one_manual_source_per_user(user):
    app_data_source(user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        DataSource.objects.create(user=user, kind="manual", name="Another", priority=10)


def test_a_repeated_device_reading_is_a_duplicate_of_the_stored_one(user):
    watch = DeviceFactory(owner=user)
    item = {"metric_type": "heart_rate", "value": 70, "recorded_at": "2026-03-10T09:00:00Z"}
    first = ingest(watch.data_source, item)
    again = ingest_readings(data_source=watch.data_source, items=[item, item | {"recorded_at": "2026-03-10T09:01:00Z"}])
    assert [(r.status, r.id) for r in again.results][0] == ("duplicate", first.results[0].id)
    assert again.results[1].status == "created"


# --- The sources API -----------------------------------------------------------------------------


def test_the_sources_list_has_the_users_sources_highest_priority_first(as_user, user, other_user):
    manual = app_data_source(user=user)
    watch = DeviceFactory(owner=user, name="Watch")
    DeviceFactory(owner=other_user)
    body = as_user.get(SOURCES).json()
    assert body["count"] == 2
    assert [(s["id"], s["kind"], s["name"], s["priority"], s["patient"]) for s in body["results"]] == [
        (str(watch.data_source_id), "device", "Watch", 40, str(user.pk)),
        (str(manual.pk), "manual", "Manual entry", 10, str(user.pk)),
    ]


def test_a_source_is_retrieved_and_renamed_by_its_owner(as_user, user):
    manual = app_data_source(user=user)
    assert as_user.get(f"{SOURCES}{manual.pk}/").json()["name"] == "Manual entry"
    response = as_user.patch(f"{SOURCES}{manual.pk}/", {"name": "Typed in", "kind": "device"}, format="json")
    assert response.status_code == 200, response.json()
    manual.refresh_from_db()
    assert (manual.name, manual.kind, manual.priority) == ("Typed in", "manual", 10)


def test_a_negative_priority_is_400(as_user, user):
    manual = app_data_source(user=user)
    response = as_user.patch(f"{SOURCES}{manual.pk}/", {"priority": -1}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "priority"


def test_another_users_source_is_not_found(as_user, other_user):
    theirs = app_data_source(user=other_user)
    assert as_user.get(f"{SOURCES}{theirs.pk}/").status_code == 404
    assert as_user.patch(f"{SOURCES}{theirs.pk}/", {"priority": 99}, format="json").status_code == 404
    assert as_user.get(SOURCES).json()["count"] == 0
    theirs.refresh_from_db()
    assert theirs.priority == 10


def test_a_consented_clinician_reads_sources_but_does_not_change_them(api_client, clinician, user):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    manual = app_data_source(user=user)
    client = bearer(api_client, clinician)
    assert [s["id"] for s in client.get(SOURCES).json()["results"]] == [str(manual.pk)]
    assert client.get(f"{SOURCES}{manual.pk}/").status_code == 200
    assert client.patch(f"{SOURCES}{manual.pk}/", {"priority": 99}, format="json").status_code == 403
    manual.refresh_from_db()
    assert manual.priority == 10


def test_a_clinician_without_the_metrics_scope_does_not_see_sources(api_client, clinician, user):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    manual = app_data_source(user=user)
    client = bearer(api_client, clinician)
    assert client.get(f"{SOURCES}{manual.pk}/").status_code == 404


def test_an_unknown_source_id_is_404(as_user):
    assert as_user.get(f"{SOURCES}{uuid.uuid4()}/").status_code == 404
