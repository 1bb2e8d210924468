"""Medications benchmark: materialising 48 h of doses for 10,000 plans against a bulk INSERT of the same rows.

Run with `make bench` (PostgreSQL from the environment, settings config.settings.test). Everything happens in a
throwaway PostgreSQL database created here and dropped at the end, even on failure.

What it does:
  1. makes --patients patients (default 2,000) in a mix of time zones (New York, London, Auckland, Tokyo, UTC) with
     --plans-per-patient active plans each (default 5: 10,000 plans): once, twice or three times a day on the clock,
     every 8 h elapsed, weekly by RRULE, some on weekdays only, and one as-needed plan in ten (no doses);
  2. ours: `medications.doses.materialise_due(now=...)`, the beat job itself, in a transaction, commit included:
     the paged plan query with profiles, the schedule expansion per plan in its patient's zone, and the conflict-
     skipping insert of every dose of the next 48 h;
  3. baseline: the very rows ours wrote (read back between runs), inserted by raw psycopg on its own connection as
     one `INSERT ... SELECT FROM unnest(...)` per 5,000 rows, commit included: the database's floor for a bulk
     INSERT into the same table, with its unique key and indexes, and no Python work at all.
  The dose table is emptied (TRUNCATE) before every run of either side; 1 warm-up, then --runs runs each,
  alternated; medians. materialise_ratio = baseline_s / ours_s (1.0 = as fast as the bare INSERT; goal ≥ 0.5).
Also printed: a second run of the job on a full table (the steady state of a beat every 30 minutes: every row a
conflict) and the job's query count. Nothing passes or fails on time; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from _harness import err, positive, run_in_throwaway_database  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Profile, Role, User  # noqa: E402
from medications import doses  # noqa: E402
from medications.models import Dose, MedicationPlan, Timing  # noqa: E402

ZONES = ["America/New_York", "Europe/London", "Pacific/Auckland", "Asia/Tokyo", "UTC"]
# (times, interval_hours, rrule, days_of_week, timing, as_needed)
SHAPES = [
    (["08:00"], None, "", [], Timing.CLOCK, False),
    (["08:00", "20:00"], None, "", [], Timing.CLOCK, False),
    (["07:00", "13:00", "19:00"], None, "", [], Timing.CLOCK, False),
    (["06:00"], 8, "", [], Timing.ELAPSED, False),
    (["09:00"], None, "FREQ=WEEKLY;BYDAY=MO,TH", [], Timing.CLOCK, False),
    (["08:00"], None, "", [0, 1, 2, 3, 4], Timing.CLOCK, False),
    (["08:00", "20:00"], None, "", [], Timing.ELAPSED, False),
    (["21:00"], None, "", [], Timing.CLOCK, False),
    (["08:00"], None, "", [], Timing.CLOCK, False),
    ([], None, "", [], Timing.CLOCK, True),
]
COLUMNS = [
    "id",
    "plan_id",
    "patient_id",
    "scheduled_at",
    "local_date",
    "status",
    "quantity",
    "late",
    "skip_reason",
    "note",
    "created_at",
]
TYPES = ["uuid", "uuid", "uuid", "timestamptz", "date", "text", "numeric", "boolean", "text", "text", "timestamptz"]
CHUNK = 5000


def raw_connection() -> psycopg.Connection:
    s = connection.settings_dict
    params = {"dbname": s["NAME"], "user": s["USER"], "host": s["HOST"] or None, "port": s["PORT"] or None}
    if s.get("PASSWORD"):
        params["password"] = s["PASSWORD"]
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None})


def make_plans(patients: int, per_patient: int) -> int:
    err(f"Making {patients} patients and {patients * per_patient} plans...")
    users = User.objects.bulk_create(
        User(email=f"bench-patient-{n}@example.com", role=Role.PATIENT, password="!") for n in range(patients)
    )
    Profile.objects.bulk_create(Profile(user=user, timezone=ZONES[n % len(ZONES)]) for n, user in enumerate(users))
    start = datetime.now(UTC).date() - timedelta(days=10)
    long_ago = datetime.now(UTC) - timedelta(days=10)
    plans = []
    for n, user in enumerate(users):
        for k in range(per_patient):
            times, interval, rrule, days, timing, as_needed = SHAPES[(n * per_patient + k) % len(SHAPES)]
            plans.append(
                MedicationPlan(
                    patient=user,
                    name=f"Bench medicine {k}",
                    dose=Decimal(1),
                    times=times,
                    interval_hours=interval,
                    rrule=rrule,
                    days_of_week=days,
                    timing=timing,
                    anchor_timezone=ZONES[n % len(ZONES)],
                    as_needed=as_needed,
                    start_date=start,
                    doses_from=long_ago,
                    created_by=user,
                )
            )
    MedicationPlan.objects.bulk_create(plans, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE medications_medicationplan")
        cursor.execute("VACUUM ANALYZE accounts_profile")
    return len(plans)


def truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE medications_dose")


def ours(now: datetime) -> float:
    truncate()
    started = time.perf_counter()
    with transaction.atomic():
        doses.materialise_due(now=now)
    return time.perf_counter() - started


def baseline(rows: list[tuple], raw: psycopg.Connection) -> float:
    truncate()
    columns = ", ".join(COLUMNS)
    arrays = ", ".join(f"%s::{kind}[]" for kind in TYPES)
    sql = f"INSERT INTO medications_dose ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608 (constants)
    started = time.perf_counter()
    with raw.cursor() as cursor:
        for at in range(0, len(rows), CHUNK):
            chunk = rows[at : at + CHUNK]
            cursor.execute(sql, [list(column) for column in zip(*chunk, strict=True)])
    raw.commit()
    return time.perf_counter() - started


def run(args: argparse.Namespace, report: dict) -> None:
    plans = make_plans(args.patients, args.plans_per_patient)
    now = datetime.now(UTC)
    ours(now)  # warm-up, and the rows the baseline inserts
    rows = list(Dose.objects.order_by().values_list(*COLUMNS))
    err(f"{len(rows)} doses for {plans} plans over the next 48 h.")
    raw = raw_connection()
    baseline(rows, raw)  # warm-up
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    for i in range(args.runs):
        for side in ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours"):
            times[side].append(ours(now) if side == "ours" else baseline(rows, raw))
            err(f"  run {i + 1} {side}: {times[side][-1]:.3f} s")
    raw.close()
    # The steady state: the beat again on a table that already holds every dose.
    ours(now)
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        with transaction.atomic():
            doses.materialise_due(now=now)
        again_s = time.perf_counter() - started
    median = {side: statistics.median(t) for side, t in times.items()}
    ratio = median["baseline"] / median["ours"]
    print(f"\nMaterialising 48 h of doses: {plans} plans, {len(rows)} doses")
    print(f"  ours (materialise_due, commit included): median {median['ours']:.3f} s")
    print(f"  bulk INSERT of the same rows (unnest, {CHUNK} a statement): median {median['baseline']:.3f} s")
    print(f"  materialise_ratio = {ratio:.2f} (goal ≥ 0.5)")
    print(f"  the job again on a full table: {again_s:.3f} s, {len(captured)} queries")
    report.update(
        materialise_ratio=ratio,
        plans=plans,
        doses=len(rows),
        ours_s=median["ours"],
        bulk_insert_s=median["baseline"],
        rerun_s=again_s,
        rerun_queries=len(captured),
        runs=args.runs,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=positive, default=2000, help="patients (default 2,000)")
    parser.add_argument("--plans-per-patient", type=positive, default=5, help="plans per patient (default 5)")
    parser.add_argument("--runs", type=positive, default=5, help="runs per side (default 5)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    logging.getLogger("celery").setLevel(logging.WARNING)
    return run_in_throwaway_database(
        "bench_medications", lambda report: run(args, report), ["materialise_ratio", "plans", "doses"]
    )


if __name__ == "__main__":
    sys.exit(main())
