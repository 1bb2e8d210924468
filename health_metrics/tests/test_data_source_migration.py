"""The migration that moves readings onto data sources, forward and back, on PostgreSQL."""

import uuid
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("health_metrics", "0009_exportjob_moved_to_records"), ("iot_devices", "0004_batch_failure_reason_and_alert")]
AFTER = [("health_metrics", "0011_readings_on_data_sources"), ("iot_devices", "0005_device_data_source")]
AT = datetime(2026, 3, 10, 9, tzinfo=UTC)


def migrate(targets):
    """Migrate to `targets`; the models as the database now has them (other apps stay at their latest)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    applied = [key for key in executor.loader.applied_migrations if key in executor.loader.graph.nodes]
    return executor.loader.project_state(applied).apps


@pytest.fixture
def at_the_old_schema(transactional_db):
    """The schema before data sources; the latest one again afterwards, whatever the test did."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    apps = migrate(BEFORE)
    yield apps
    migrate(latest)


def old_reading(apps, user, **fields):
    values = {
        "id": uuid.uuid4(),
        "user_id": user.pk,
        "metric_type_id": 2,
        "value": 70.0,
        "original_value": 70.0,
        "original_unit": "/min",
        "recorded_at": AT,
        "utc_offset_minutes": 0,
        "local_date": date(2026, 3, 10),
    }
    return apps.get_model("health_metrics", "Reading").objects.create(**(values | fields))


def test_readings_move_onto_data_sources_and_back(at_the_old_schema):
    apps = at_the_old_schema
    User = apps.get_model("accounts", "User")
    alice = User.objects.create(email="alice@example.com", password="!")
    Device = apps.get_model("iot_devices", "Device")
    watch = Device.objects.create(owner_id=alice.pk, name="Watch")
    from_watch = old_reading(apps, alice, source="device", device_id=watch.pk)
    typed = old_reading(apps, alice, source="manual", value=71.0, original_value=71.0)
    imported = old_reading(apps, alice, source="import", recorded_at=datetime(2026, 3, 10, 10, tzinfo=UTC))
    total = old_reading(
        apps,
        alice,
        source="manual",
        metric_type_id=27,
        value=5000.0,
        original_value=5000.0,
        original_unit="{steps}",
        daily_total_key="manual:2026-03-10",
    )

    apps = migrate(AFTER)
    Reading = apps.get_model("health_metrics", "Reading")
    DataSource = apps.get_model("health_metrics", "DataSource")
    device_source = apps.get_model("iot_devices", "Device").objects.get(pk=watch.pk).data_source
    assert (device_source.user_id, device_source.kind, device_source.name, device_source.priority) == (
        alice.pk,
        "device",
        "Watch",
        40,
    )
    sources = {(s.kind, s.name, s.priority, s.is_app_default) for s in DataSource.objects.filter(user_id=alice.pk)}
    assert sources == {
        ("device", "Watch", 40, False),
        ("manual", "Manual entry", 10, True),
        ("import", "Import", 20, True),
    }
    moved = {r.pk: (r.data_source.kind, r.data_source_id, r.is_daily_total) for r in Reading.objects.all()}
    manual = DataSource.objects.get(user_id=alice.pk, kind="manual")
    assert moved == {
        from_watch.pk: ("device", device_source.pk, False),
        typed.pk: ("manual", manual.pk, False),
        imported.pk: ("import", DataSource.objects.get(user_id=alice.pk, kind="import").pk, False),
        total.pk: ("manual", manual.pk, True),
    }

    apps = migrate(BEFORE)
    Reading = apps.get_model("health_metrics", "Reading")
    restored = {r.pk: (r.source, r.device_id, r.daily_total_key) for r in Reading.objects.all()}
    assert restored == {
        from_watch.pk: ("device", watch.pk, None),
        typed.pk: ("manual", None, None),
        imported.pk: ("import", None, None),
        total.pk: ("manual", None, "manual:2026-03-10"),
    }


def test_readings_the_new_keys_call_duplicates_keep_the_one_changed_last(at_the_old_schema):
    apps = at_the_old_schema
    alice = apps.get_model("accounts", "User").objects.create(email="alice@example.com", password="!")
    first = old_reading(apps, alice, source="manual", value=70.0)
    second = old_reading(apps, alice, source="manual", value=72.0)  # the same moment, typed in again
    apps = migrate(AFTER)
    kept = apps.get_model("health_metrics", "Reading").objects.values_list("pk", "value")
    newer = max([first, second], key=lambda r: (r.updated_at, r.pk))
    assert list(kept) == [(newer.pk, newer.value)]
