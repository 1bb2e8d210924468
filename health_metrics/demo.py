"""Ninety days of realistic readings for the demo patients, stored through the one ingest path, and their
daily health scores.

Heart rate, steps and sleep come from each patient's demo watch (a device data source); the rest are
manual entries, in the units the patient would type (weights in pounds for the imperial profiles, stored in kg
at full precision and answered rounded: 165.0 lb reads 74.8 kg). Yesterday also has a steps total typed in by
hand, lower than the watch's: the day shows the watch's total (a device outranks manual entry), never the sum
of both.

Deterministic client ids make it safe to run twice: a second run stores no reading twice and rewrites the same scores.
"""

from __future__ import annotations

import math
import random
import uuid
import zoneinfo
from datetime import datetime, time, timedelta

from django.utils import timezone

from accounts.models import Role, User

from .alerts import LOOKBACK_DAYS, check_anomalies
from .ingest import ingest_readings, record_readings
from .models import DataSource, HealthAlert, Reading, SourceKind
from .scoring import compute_health_score
from .services import create_data_source
from .units import ureg

DEMO_DAYS = 90
CHUNK = 1000
NAMESPACE = uuid.UUID("6f1d2c3e-7a49-4b8e-9d0c-2e5a1b7c9f00")
DEMO_WATCH = "Demo watch"
FROM_WATCH = ("heart_rate", "steps", "sleep_duration")


def demo_watch(user: User) -> DataSource:
    """The patient's demo watch: a device data source (made once; health_metrics knows no device model)."""
    watch = DataSource.objects.filter(user=user, kind=SourceKind.DEVICE, name=DEMO_WATCH).first()
    return watch or create_data_source(user=user, kind=SourceKind.DEVICE, name=DEMO_WATCH)


def _readings_for(user: User, *, days: int, now: datetime) -> list[dict]:
    rng = random.Random(user.email)  # the same demo every time
    tz = zoneinfo.ZoneInfo(user.profile.timezone)
    today = now.astimezone(tz).date()
    diabetic = any("diabetes" in c.lower() for c in user.profile.conditions)
    imperial = user.profile.preferred_units == "imperial"
    weight = rng.uniform(62, 92)
    # Its own generator, so adding resting heart rates left every other demo value (and client id) as it was.
    resting_rng = random.Random(f"{user.email}|resting_heart_rate")
    resting = 62 if "Hypertension" in user.profile.conditions else 57
    items: list[dict] = []

    def add(metric_type: str, when: datetime, source: str | None = None, **values) -> None:
        if when > now:
            return
        source = source or (SourceKind.DEVICE if metric_type in FROM_WATCH else SourceKind.MANUAL)
        key = f"{user.email}|{metric_type}|{when.isoformat()}" + (
            "|manual" if source != SourceKind.DEVICE and metric_type in FROM_WATCH else ""
        )
        items.append(
            {
                "metric_type": metric_type,
                "recorded_at": when.isoformat(),
                "client_id": str(uuid.uuid5(NAMESPACE, key)),
                "source": source,
                **values,
            }
        )

    for offset in range(days, -1, -1):
        day = today - timedelta(days=offset)
        midnight = datetime.combine(day, time(0), tzinfo=tz)
        for hour in range(24):  # heart rate: low at night, up by day, a bump in the evening walk
            rhythm = 58 + 14 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) + (12 if hour == 18 else 0)
            add(
                "heart_rate",
                midnight + timedelta(hours=hour, minutes=rng.randint(0, 59)),
                value=round(rhythm + rng.gauss(0, 3)),
            )
        morning = midnight + timedelta(hours=7, minutes=rng.randint(0, 40))
        add("resting_heart_rate", morning - timedelta(minutes=10), value=round(resting + resting_rng.gauss(0, 2)))
        systolic = round(rng.gauss(138 if "Hypertension" in user.profile.conditions else 118, 7))
        add(
            "blood_pressure",
            morning,
            systolic=systolic,
            diastolic=round(min(systolic - 25, rng.gauss(80, 5))),
            unit="mmHg",
        )
        weight += rng.gauss(0.01, 0.15)  # a slow drift
        if imperial:  # an American bathroom scale reads pounds, to 0.2 lb; stored in kg at full precision
            pounds = round(ureg.Quantity(weight, "kilogram").to("pound").magnitude * 5) / 5
            add("body_weight", morning + timedelta(minutes=5), value=pounds, unit="lb")
        else:
            add("body_weight", morning + timedelta(minutes=5), value=round(weight, 1), unit="kg")
        steps = max(0, round(rng.gauss(7500, 2500)))
        add("steps", midnight + timedelta(hours=21), value=steps)
        if offset == 1:  # typed in by hand too, from memory: the watch's total wins the day
            add("steps", midnight + timedelta(hours=20), source=SourceKind.MANUAL, value=round(steps * 0.8, -2))
        asleep = midnight - timedelta(hours=rng.uniform(0.5, 2))
        awake = midnight + timedelta(hours=rng.uniform(6, 7.5))
        hours = round((awake - asleep).total_seconds() / 3600, 2)
        add("sleep_duration", asleep, ended_at=awake.isoformat(), value=hours, unit="h")
        if diabetic:
            for meal_hour in (7, 12, 18, 22):
                glucose = rng.gauss(160 if meal_hour != 7 else 125, 30)
                add(
                    "blood_glucose",
                    midnight + timedelta(hours=meal_hour, minutes=rng.randint(0, 50)),
                    value=round(max(55, glucose)),
                )
    return items


def seed_demo_readings(*, stdout, days: int = DEMO_DAYS) -> None:
    """Add `days` days of readings for every demo patient, with a progress bar."""
    patients = list(
        User.objects.filter(role=Role.PATIENT, email__endswith="@openvitals.local").select_related("profile")
    )
    now = timezone.now()
    for patient in patients:
        watch = demo_watch(patient)
        items = _readings_for(patient, days=days, now=now)
        created = 0
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            from_watch = [item for item in chunk if item["source"] == SourceKind.DEVICE]
            outcome = ingest_readings(data_source=watch, items=from_watch)
            created += outcome.count("created") + outcome.count("replaced")
            outcome = record_readings(
                user=patient, items=[item for item in chunk if item["source"] != SourceKind.DEVICE]
            )
            created += outcome.count("created") + outcome.count("replaced")
            done = min(start + CHUNK, len(items))
            bar = "#" * (30 * done // len(items))
            stdout.write(f"\r  readings {patient.email:<26} [{bar:<30}] {done}/{len(items)}", ending="")
            stdout.flush()
        stdout.write(f"  ({created} new)")


def seed_demo_scores(*, stdout, days: int = DEMO_DAYS) -> None:
    """Score every local day of the demo patients' readings up to today, with a progress bar.

    Idempotent: each day's score is an upsert derived from the readings.
    """
    patients = list(
        User.objects.filter(role=Role.PATIENT, email__endswith="@openvitals.local").select_related("profile")
    )
    for patient in patients:
        today = timezone.localdate(timezone=zoneinfo.ZoneInfo(patient.profile.timezone))
        local_days = [today - timedelta(days=back) for back in range(days, -1, -1)]
        scored = 0
        for done, day in enumerate(local_days, start=1):
            if compute_health_score(user=patient, local_date=day) is not None:
                scored += 1
            bar = "#" * (30 * done // len(local_days))
            stdout.write(f"\r  scores   {patient.email:<26} [{bar:<30}] {done}/{len(local_days)}", ending="")
            stdout.flush()
        stdout.write(f"  ({scored} days scored)")


# Recent episodes a clinician should see on the triage list: (patient, type, minutes ago and values).
DEMO_EPISODES = {
    "alice@openvitals.local": [  # a hypertensive crisis, confirmed by a repeat reading five minutes later
        ("blood_pressure", 15, {"systolic": 184, "diastolic": 118}),
        ("blood_pressure", 10, {"systolic": 181, "diastolic": 121}),
    ],
    "carmen@openvitals.local": [  # a fever, rising
        ("body_temperature", 20, {"value": 38.4}),
        ("body_temperature", 5, {"value": 38.9}),
    ],
    "dev@openvitals.local": [  # two low oximeter readings in a row
        ("oxygen_saturation", 12, {"value": 89}),
        ("oxygen_saturation", 8, {"value": 88}),
    ],
}


def seed_demo_alerts(*, stdout) -> None:
    """Add a few recent out-of-range episodes and run the anomaly checks over every demo patient's last weeks.

    The checks run here, not only on the worker, so the demo has its alerts whatever the broker is doing.
    Idempotent: deterministic client ids store the readings once, and the checks raise nothing twice.
    """
    now = timezone.now().replace(second=0, microsecond=0)
    patients = list(User.objects.filter(role=Role.PATIENT, email__endswith="@openvitals.local"))
    for patient in patients:
        items = [
            {
                "metric_type": code,
                "recorded_at": (now - timedelta(minutes=minutes)).isoformat(),
                # The same run on the same day stores nothing twice.
                "client_id": str(uuid.uuid5(NAMESPACE, f"{patient.email}|alert|{code}|{minutes}|{now:%Y-%m-%d}")),
                **values,
            }
            for code, minutes, values in DEMO_EPISODES.get(patient.email, [])
        ]
        if items:
            record_readings(user=patient, items=items)
        days = set(
            Reading.objects.filter(user=patient, recorded_at__gte=now - timedelta(days=LOOKBACK_DAYS))
            .values_list("metric_type_id", "local_date")
            .distinct()
            .order_by()
        )
        counts = check_anomalies(user_id=patient.pk, days=days)
        open_now = HealthAlert.objects.filter(user=patient, resolved_at__isnull=True).count()
        stdout.write(f"  alerts   {patient.email:<26} {open_now} open ({counts['opened']} new)")
