"""Appointments benchmark: free slots over 30 days in a constant number of queries, and booking throughput under
20 concurrent clients against a bare INSERT of the same rows.

Run with `make bench` (PostgreSQL and Redis from the environment, settings config.settings.test).
Everything happens in a throwaway PostgreSQL database created here and dropped at the end,
even on failure; the developer's own databases are never touched.

What it does:
  1. availability: two providers set up alike (UTC, 08:00-20:00 every day, 15-minute grid, a 30-minute type, no
     notice, 90-day horizon); one has 500 confirmed bookings spread over the next 30 days, the other none.
     `selectors.provider_slots` over 30 days (what GET providers/{id}/availability/ calls) is counted in SQL
     statements for both (availability_queries_30d; it must be the same: constant) and timed (--runs each,
     alternated, medians); the API request itself is counted too (availability_api_queries_30d).
  2. booking throughput: 20 threads, each with its own database connection (closed at the thread's end) and its
     own patient with a real access token, POST /api/v1/appointments/ through Django's test Client (the whole
     API: JWT, validation, the service, the exclusion constraint, the event row, the notify() fan-out; the
     on-commit hand-off of deliveries to the workers is counted and left out, as in bench/notifications.py),
     --per-client distinct free slots each, all released at once by a barrier; against 20 threads, each with its
     own psycopg connection in autocommit, doing a bare INSERT of the same appointment rows (same times, a twin
     provider) one statement per booking. booking_ratio = ours_bookings_per_s / bare_inserts_per_s (1.0 = as
     fast as the bare INSERT). --runs runs each, alternated, fresh providers per run; medians.
  3. a same-slot storm: 20 threads POST the same slot at once: one 201, nineteen 409 (`slot_taken`).
Nothing passes or fails on time. The last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import threading
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from _harness import err, positive, run_in_throwaway_database  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

import notifications.services as notification_services  # noqa: E402
from accounts.models import Role, User  # noqa: E402
from accounts.tokens import issue_tokens  # noqa: E402
from appointments import selectors  # noqa: E402
from appointments.models import Appointment, AppointmentType, Provider, WorkingHours  # noqa: E402

CLIENTS = 20
EXISTING = 500
DAYS = 30
DURATION = 30
TABLE = Appointment._meta.db_table
COLUMNS = [field.column for field in Appointment._meta.concrete_fields]
INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"


class HandOff:
    """Stands in for notifications' enqueue: counts the delivery ids that would go to the workers."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, delivery_ids: list[int]) -> None:
        with self.lock:
            self.count += len(delivery_ids)


def raw_connection() -> psycopg.Connection:
    s = connection.settings_dict
    params = {"dbname": s["NAME"], "user": s["USER"], "host": s["HOST"] or None, "port": s["PORT"] or None}
    if s.get("PASSWORD"):
        params["password"] = s["PASSWORD"]
    return psycopg.connect(autocommit=True, **{k: v for k, v in params.items() if v is not None})


def make_provider(tag: str) -> tuple[Provider, AppointmentType]:
    clinician = User.objects.create_user(f"bench-dr-{tag}@example.com", "bench-password-123", role=Role.CLINICIAN)
    provider = Provider.objects.create(user=clinician, timezone="UTC", minimum_notice_minutes=0, horizon_days=90)
    WorkingHours.objects.bulk_create(
        WorkingHours(provider=provider, weekday=day, start=clock(8), end=clock(20)) for day in range(7)
    )
    kind = AppointmentType.objects.create(provider=provider, name="Consultation", duration_minutes=DURATION)
    return provider, kind


def first_day() -> datetime:
    tomorrow = timezone.now().astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(tomorrow, clock(0), tzinfo=UTC)


def row(*, provider_id, kind: AppointmentType, patient_id, starts_at: datetime, status: str) -> Appointment:  # noqa: ANN001
    ends_at = starts_at + timedelta(minutes=DURATION)
    now = timezone.now()
    return Appointment(
        id=uuid.uuid4(),
        patient_id=patient_id,
        provider_id=provider_id,
        appointment_type=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        blocked_start=starts_at,
        blocked_end=ends_at,
        status=status,
        reason="Bench booking",
        booked_by_id=patient_id,
        status_changed_at=now,
        status_changed_by_id=patient_id,
        created_at=now,
        updated_at=now,
    )


# --- 1. Availability ---------------------------------------------------------------------------------


def measure_availability(patient: User, runs: int, report: dict) -> None:
    busy, busy_kind = make_provider("busy")
    idle, idle_kind = make_provider("idle")
    start = first_day()
    per_day = -(-EXISTING // DAYS)  # 17 a day, every 30 minutes from 08:00: at most 8.5 of the 12 working hours
    Appointment.objects.bulk_create(
        row(
            provider_id=busy.pk,
            kind=busy_kind,
            patient_id=patient.pk,
            starts_at=start + timedelta(days=n // per_day, hours=8, minutes=30 * (n % per_day)),
            status="confirmed",
        )
        for n in range(EXISTING)
    )
    stored = Appointment.objects.filter(provider_id=busy.pk).count()
    first, last = start.date(), start.date() + timedelta(days=DAYS - 1)

    def slots(provider: Provider, kind: AppointmentType) -> list:
        return selectors.provider_slots(
            provider=provider, appointment_type=kind, start_date=first, end_date=last, now=timezone.now()
        )

    counts, found = {}, {}
    for name, provider, kind in (("busy", busy, busy_kind), ("idle", idle, idle_kind)):
        provider = Provider.objects.get(pk=provider.pk)
        with CaptureQueriesContext(connection) as captured:
            found[name] = len(slots(provider, kind))
        counts[name] = len(captured)
    token = issue_tokens(patient)["access"]
    client = Client(headers={"authorization": f"Bearer {token}"})
    api = {}
    for name, provider, kind in (("busy", busy, busy_kind), ("idle", idle, idle_kind)):
        url = f"/api/v1/providers/{provider.pk}/availability/"
        query = {"start_date": first.isoformat(), "end_date": last.isoformat(), "type": str(kind.pk)}
        client.get(url, query)  # warm
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url, query)
        if response.status_code != 200:
            raise RuntimeError(f"availability answered {response.status_code}: {response.content[:300]}")
        api[name] = len(captured)
    times: dict[str, list[float]] = {"busy": [], "idle": []}
    providers = {
        "busy": (Provider.objects.get(pk=busy.pk), busy_kind),
        "idle": (Provider.objects.get(pk=idle.pk), idle_kind),
    }
    for name in times:
        slots(*providers[name])  # warm
    for i in range(runs):
        for name in ("busy", "idle") if i % 2 == 0 else ("idle", "busy"):
            started = time.perf_counter()
            slots(*providers[name])
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"\nAvailability over {DAYS} days (one provider, 08:00-20:00 daily, 15-minute grid, a {DURATION}-minute type)"
    )
    print(
        f"  with {stored} bookings: {counts['busy']} queries, {found['busy']} free slots, "
        f"median {median['busy'] * 1000:.2f} ms"
    )
    print(
        f"  with 0 bookings:   {counts['idle']} queries, {found['idle']} free slots, "
        f"median {median['idle'] * 1000:.2f} ms"
    )
    print(f"  through the API (GET providers/{{id}}/availability/): {api['busy']} vs {api['idle']} queries")
    report.update(
        availability_queries_30d=counts["busy"],
        availability_queries_30d_no_bookings=counts["idle"],
        availability_queries_constant=counts["busy"] == counts["idle"] and api["busy"] == api["idle"],
        availability_api_queries_30d=api["busy"],
        availability_api_queries_30d_no_bookings=api["idle"],
        availability_30d_ms=median["busy"] * 1000,
        availability_30d_no_bookings_ms=median["idle"] * 1000,
        availability_free_slots=found["busy"],
        availability_free_slots_no_bookings=found["idle"],
        existing_bookings=stored,
    )


# --- 2. Throughput ---------------------------------------------------------------------------------------


def run_threads(work, count: int) -> float:  # noqa: ANN001
    """Start `count` threads running work(i) after one barrier; the wall time from release to the last one's end."""
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        kinds = sorted({f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in errors})
        raise RuntimeError(f"{len(errors)} threads failed: {kinds}")
    return elapsed


def plan(kind: AppointmentType, per_client: int) -> list[list[datetime]]:
    """Distinct free slot starts, `per_client` for each client: every 30 minutes from 08:00, day by day."""
    start = first_day()
    starts = [start + timedelta(days=n // 24, hours=8, minutes=30 * (n % 24)) for n in range(CLIENTS * per_client)]
    return [starts[i::CLIENTS] for i in range(CLIENTS)]


def book_through_api(tokens: list[str], per_client: int, run: int) -> tuple[float, int]:
    provider, kind = make_provider(f"api-{run}")
    starts = plan(kind, per_client)
    statuses: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        client = Client(headers={"authorization": f"Bearer {tokens[i]}"})
        for start in starts[i]:
            body = {"provider": str(provider.pk), "appointment_type": str(kind.pk), "starts_at": start.isoformat()}
            response = client.post("/api/v1/appointments/", body, content_type="application/json")
            with lock:
                statuses.append(response.status_code)
            if response.status_code != 201:
                raise RuntimeError(f"booking answered {response.status_code}: {response.content[:300]}")

    elapsed = run_threads(work, CLIENTS)
    booked = Appointment.objects.filter(provider_id=provider.pk).count()
    if booked != CLIENTS * per_client:
        raise RuntimeError(f"the API stored {booked} bookings, expected {CLIENTS * per_client}")
    return elapsed, booked


def insert_bare(patients: list[User], per_client: int, run: int) -> tuple[float, int]:
    provider, kind = make_provider(f"bare-{run}")
    starts = plan(kind, per_client)
    rows = [
        [
            tuple(getattr(r, field.attname) for field in Appointment._meta.concrete_fields)
            for r in (
                row(provider_id=provider.pk, kind=kind, patient_id=patients[i].pk, starts_at=s, status="requested")
                for s in starts[i]
            )
        ]
        for i in range(CLIENTS)
    ]
    pgs = [raw_connection() for _ in range(CLIENTS)]  # connected before the clock, as Django's are after a warm-up

    def work(i: int) -> None:
        with pgs[i].cursor() as cursor:
            for values in rows[i]:
                cursor.execute(INSERT, values)  # autocommit: one transaction per booking, like one request

    try:
        elapsed = run_threads(work, CLIENTS)
    finally:
        for pg in pgs:
            pg.close()
    inserted = Appointment.objects.filter(provider_id=provider.pk).count()
    if inserted != CLIENTS * per_client:
        raise RuntimeError(f"the bare INSERT stored {inserted} rows, expected {CLIENTS * per_client}")
    return elapsed, inserted


def measure_throughput(patients: list[User], tokens: list[str], per_client: int, runs: int, report: dict) -> None:
    err("Throughput: warming up...")
    book_through_api(tokens, 2, -1)
    insert_bare(patients, 2, -1)
    rates: dict[str, list[float]] = {"api": [], "bare": []}
    for i in range(runs):
        order = ("api", "bare") if i % 2 == 0 else ("bare", "api")
        for name in order:
            elapsed, count = (
                book_through_api(tokens, per_client, i) if name == "api" else insert_bare(patients, per_client, i)
            )
            rates[name].append(count / elapsed)
        err(f"  run {i + 1}/{runs}: API {rates['api'][-1]:.0f} bookings/s, bare INSERT {rates['bare'][-1]:.0f} rows/s")
    median = {name: statistics.median(r) for name, r in rates.items()}
    print(
        f"\nBooking throughput: {CLIENTS} concurrent clients, {per_client} distinct free slots each, "
        f"{runs} runs, medians"
    )
    runs_api = ", ".join(f"{r:.0f}" for r in rates["api"])
    runs_bare = ", ".join(f"{r:.0f}" for r in rates["bare"])
    print(f"  POST /api/v1/appointments/ (JWT, test Client): {median['api']:8.0f} bookings/s  (runs: {runs_api})")
    print(f"  bare INSERT (psycopg, autocommit, one each):   {median['bare']:8.0f} rows/s      (runs: {runs_bare})")
    print(f"  booking_ratio = ours / bare = {median['api'] / median['bare']:.3f}")
    report.update(
        booking_ratio=median["api"] / median["bare"],
        booking_api_per_s=median["api"],
        booking_bare_insert_per_s=median["bare"],
        booking_clients=CLIENTS,
        booking_per_client=per_client,
    )


def same_slot_storm(tokens: list[str], report: dict) -> None:
    provider, kind = make_provider("storm")
    start = first_day() + timedelta(hours=10)
    statuses: list[int] = []
    codes: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        client = Client(headers={"authorization": f"Bearer {tokens[i]}"})
        body = {"provider": str(provider.pk), "appointment_type": str(kind.pk), "starts_at": start.isoformat()}
        response = client.post("/api/v1/appointments/", body, content_type="application/json")
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 409:
                codes.append(response.json()["errors"][0]["code"])

    run_threads(work, CLIENTS)
    created, conflicts = statuses.count(201), statuses.count(409)
    stored = Appointment.objects.filter(provider_id=provider.pk).count()
    print(f"\nSame-slot storm: {CLIENTS} clients POST one slot at once: {created} x 201, {conflicts} x 409 "
          f"({', '.join(sorted(set(codes)))}), {stored} stored")  # fmt: skip
    report.update(
        storm_201=created, storm_409=conflicts, storm_other=CLIENTS - created - conflicts, storm_stored=stored
    )


# --- Main ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace, report: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_setting('max_connections')")
        version, max_connections = cursor.fetchone()
    print(
        f"PostgreSQL: {version.split(',')[0]}; max_connections {max_connections}; "
        f"database {connection.settings_dict['NAME']}"
    )
    print(f"Python {sys.version.split()[0]}, Django {django.get_version()}, {os.cpu_count()} CPUs\n")
    patients = [User.objects.create_user(f"bench-p{n}@example.com", "bench-password-123") for n in range(CLIENTS)]
    tokens = [issue_tokens(patient)["access"] for patient in patients]
    handoff = HandOff()
    original, notification_services.enqueue = notification_services.enqueue, handoff
    try:
        measure_availability(patients[0], args.runs * 3, report)
        measure_throughput(patients, tokens, args.per_client, args.runs, report)
        same_slot_storm(tokens, report)
    finally:
        notification_services.enqueue = original
    report["deliveries_handed_off_and_left_out"] = handoff.count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=positive, default=5, help="throughput runs per side (default 5)")
    parser.add_argument("--per-client", type=positive, default=10, help="bookings per client per run (default 10)")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    logging.getLogger("django_structlog").setLevel(logging.WARNING)
    logging.getLogger("celery").setLevel(logging.WARNING)
    logging.getLogger("django.request").setLevel(logging.ERROR)  # the storm's nineteen 409s are expected
    logging.getLogger("django_structlog.middlewares.request").setLevel(logging.ERROR)

    return run_in_throwaway_database(
        "bench_appointments",
        lambda report: run(args, report),
        ["availability_queries_30d", "availability_queries_30d_no_bookings", "booking_ratio", "storm_201", "storm_409"],
    )


if __name__ == "__main__":
    sys.exit(main())
