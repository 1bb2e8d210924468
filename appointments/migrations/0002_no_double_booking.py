"""The guard against double booking: on PostgreSQL, an exclusion constraint over active bookings' blocked ranges.

Two requested or confirmed appointments of one provider whose blocked ranges (the visit with its buffers,
half-open, so back-to-back slots are fine) overlap cannot both be stored, whatever the application checked.
SQLite (the zero-setup development database) has no exclusion constraints: there the booking service checks
for an overlap inside its write transaction.
"""

from django.db import migrations

CONSTRAINT = "appointment_no_double_booking"

EXTENSION = "CREATE EXTENSION IF NOT EXISTS btree_gist"

CREATE = f"""
ALTER TABLE appointments_appointment ADD CONSTRAINT {CONSTRAINT}
    EXCLUDE USING gist (provider_id WITH =, tstzrange(blocked_start, blocked_end, '[)') WITH &&)
    WHERE (status IN ('requested', 'confirmed'))
"""

DROP = f"ALTER TABLE appointments_appointment DROP CONSTRAINT IF EXISTS {CONSTRAINT};"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(EXTENSION)
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("appointments", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
