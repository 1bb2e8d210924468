"""Device ingest benchmark: the batch endpoint and task against raw COPY, and the device-key cost.

Run with `make bench` (PostgreSQL and Redis from the environment, settings config.settings.test).
Everything happens in a throwaway PostgreSQL database created here and dropped at the end,
even on failure; the developer's own databases are never touched.

What it does:
  1. loads 100,000 background readings (another patient) with COPY and VACUUM ANALYZE, so the
     indexes are not empty; every index and constraint of the migrated schema stays in place;
  2. big batch: one 10,000-reading batch POSTed to /api/v1/iot-devices/ingest/ with the device
     key (Django test Client; eager Celery runs the on-commit ingest task inside the request) vs
     raw psycopg COPY of the same rows into health_metrics_reading in one transaction; a fresh
     device per run, alternated, medians:
     big_batch_ratio = raw_copy_seconds / ours_seconds (1.0 = as fast as raw COPY), where ours
     runs from the request's start to the batch being done: envelope checked, batch stored,
     every reading validated, converted and stored, counts recorded, rollups and anomaly checks
     enqueued. Eager Celery also runs those downstream tasks inside the request; a worker runs
     them apart, once per ROLLUP_DELAY_SECONDS for all batches in between. They are timed on their
     own and reported too (`*_with_downstream`);
  3. small batches: 100 POSTs of 100 readings vs 100 COPYs of 100 rows, each COPY in its own
     transaction: small_batches_ratio = raw_seconds / ours_seconds, measured the same way;
  4. device-key authentication: a DRF view answering a batch as GET ingest/{id}/ does (same
     query, same serializer) with DeviceKeyAuthentication and IsDevice vs the same view with no
     authentication (AllowAny), alternated: auth_ms = mean(with key) - mean(without); also the
     real GET /api/v1/iot-devices/ingest/{id}/ against the bare view (authentication plus the
     rest of the viewset), the pure key verification in microseconds, and Django's PBKDF2
     password hasher for contrast.
Like a worker once it is ready (config/celery.py), the bench freezes the loaded app's objects out of
garbage collection first (config/startup.py): without it a full collection walks some 200,000 objects
in most 10,000-reading batches.
Nothing passes or fails on time. The last line of stdout is one JSON object with the figures.

`--explain` (or BENCH_EXPLAIN=1) adds a cProfile of one big-batch request, EXPLAIN (ANALYZE,
BUFFERS) of the INSERT ... SELECT from the staging table, and what-if timings of the pieces.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import logging
import os
import pstats
import statistics
import sys
import time
import timeit
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from _harness import err, positive, run_in_throwaway_database  # noqa: E402
from django.conf import global_settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.permissions import AllowAny  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

import health_metrics.ingest as hm_ingest  # noqa: E402
import health_metrics.tasks as hm_tasks  # noqa: E402
import iot_devices.api.views as iot_views  # noqa: E402
import iot_devices.tasks as iot_tasks  # noqa: E402
from accounts.models import User  # noqa: E402
from accounts.selectors import user_timezone  # noqa: E402
from config.startup import freeze_startup_objects  # noqa: E402
from health_metrics.ingest import COPY_COLUMNS, copy_row, validate_items  # noqa: E402
from health_metrics.models import DataSource, Reading, SourceKind  # noqa: E402
from health_metrics.services import create_data_source  # noqa: E402
from iot_devices.api.serializers import IngestBatchSerializer  # noqa: E402
from iot_devices.authentication import DeviceKeyAuthentication, IsDevice  # noqa: E402
from iot_devices.keys import SaltedSha256KeyGenerator  # noqa: E402
from iot_devices.models import BatchStatus, Device, DeviceAPIKey, IngestBatch  # noqa: E402
from iot_devices.services import register_device  # noqa: E402

INGEST_URL = "/api/v1/iot-devices/ingest/"
USER_TZ = "America/New_York"
BACKGROUND_ROWS = 100_000
BIG = 10_000
SMALL_BATCHES, SMALL_SIZE = 100, 100
COPY_SQL = f"COPY health_metrics_reading ({', '.join(COPY_COLUMNS)}) FROM STDIN"


# --- The bare baselines (mounted by this module's URLconf) ------------------------------------

BARE_DEVICE: dict[str, uuid.UUID] = {}  # the device whose batches the bare views answer


class BareBatchView(APIView):
    """The same serialized batch as GET ingest/{id}/, the same query, and no authentication."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request, pk):  # noqa: ANN001, ANN201
        batch = IngestBatch.objects.filter(device_id=BARE_DEVICE["id"]).get(pk=pk)
        return Response(IngestBatchSerializer(batch, context={"request": request}).data)


class KeyOnlyBatchView(BareBatchView):
    """The bare view with the device key authentication and nothing else of the viewset."""

    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]


urlpatterns = [
    path("bench/bare-batch/<uuid:pk>/", BareBatchView.as_view()),
    path("bench/key-only-batch/<uuid:pk>/", KeyOnlyBatchView.as_view()),
    path("", include("config.urls")),
]


# --- Data ---------------------------------------------------------------------------------------


class Clock:
    """Hands out non-overlapping minute ranges in the past, so no two runs' readings collide."""

    def __init__(self) -> None:
        self.next = datetime(2025, 1, 1, tzinfo=UTC)

    def take(self, minutes: int) -> datetime:
        start = self.next
        self.next += timedelta(minutes=minutes + 60)
        return start


def readings_json(start: datetime, n: int) -> list[dict]:
    """Minute heart rate as a device sends it: UTC instants ("Z"), bpm."""
    minute = timedelta(minutes=1)
    return [
        {
            "metric_type": "heart_rate",
            "value": 55 + (i * 7) % 60,
            "unit": "bpm",
            "recorded_at": (start + i * minute).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for i in range(n)
    ]


def copy_rows(user: User, data_source_id: uuid.UUID, items: list[dict]) -> list[tuple]:
    """The rows the app would store for these items (parsed by the app's own validation), untimed."""
    now = timezone.now()
    valid, _ = validate_items(items=items, tz=user_timezone(user.pk), now=now, default_source=SourceKind.DEVICE)
    if len(valid) != len(items):
        raise RuntimeError("the benchmark's own readings did not all validate")
    return [copy_row(v, user_id=user.pk, data_source_id=data_source_id, now=now) for _, v in valid]


def raw_source(owner: User, name: str) -> DataSource:
    """A device's data source for the raw COPY rows: the same table, keys and foreign keys as ours."""
    return create_data_source(user=owner, kind=SourceKind.DEVICE, name=name)


def make_owner(email: str) -> User:
    user = User.objects.create_user(email, "bench-password-123")
    user.profile.timezone = USER_TZ
    user.profile.save(update_fields=["timezone"])
    return user


def load_background(clock: Clock) -> None:
    other = make_owner("bench-background@example.com")
    device, _ = register_device(owner=other, name="background")
    rows = copy_rows(other, device.data_source_id, readings_json(clock.take(BACKGROUND_ROWS), BACKGROUND_ROWS))
    started = time.perf_counter()
    with raw_connection() as pg:
        with pg.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row(row)
        pg.commit()
        pg.autocommit = True
        pg.execute("VACUUM ANALYZE health_metrics_reading")
    print(
        f"Background: {BACKGROUND_ROWS:,} readings of another patient's device COPYed and VACUUM ANALYZEd "
        f"in {time.perf_counter() - started:.1f} s (all indexes and constraints in place)"
    )


def raw_connection() -> psycopg.Connection:
    s = connection.settings_dict
    params = {"dbname": s["NAME"], "user": s["USER"], "host": s["HOST"] or None, "port": s["PORT"] or None}
    if s.get("PASSWORD"):
        params["password"] = s["PASSWORD"]
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None})


# --- Measuring ----------------------------------------------------------------------------------


def device_client(key: str) -> Client:
    return Client(headers={"authorization": f"Api-Key {key}"})


def post_batch(client: Client, body: bytes) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.post(INGEST_URL, data=body, content_type="application/json")
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"POST {INGEST_URL} answered {response.status_code}: {response.content[:500]!r}")
    return elapsed, response.json()


def check_done(batch_ids: list[str], device: Device, expected_readings: int, per_batch: int) -> None:
    """Every batch done with all its readings accepted, and the readings really in the table."""
    batches = list(IngestBatch.objects.filter(pk__in=batch_ids).values_list("status", "accepted", "rejected"))
    bad = [b for b in batches if b != (BatchStatus.DONE, per_batch, 0)]
    if len(batches) != len(batch_ids) or bad:
        raise RuntimeError(f"batches not processed as expected: {bad[:3]} (of {len(batches)})")
    stored = Reading.objects.filter(data_source_id=device.data_source_id).count()
    if stored != expected_readings:
        raise RuntimeError(f"device {device.pk}: {stored} readings stored, expected {expected_readings}")


def raw_copy(pg: psycopg.Connection, chunks: list[list[tuple]]) -> float:
    """COPY each chunk in its own transaction (commit included: the deferred FK checks run there)."""
    started = time.perf_counter()
    for rows in chunks:
        with pg.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row(row)
        pg.commit()
    return time.perf_counter() - started


def check_raw(data_source_id: uuid.UUID, expected: int) -> None:
    stored = Reading.objects.filter(data_source_id=data_source_id).count()
    if stored != expected:
        raise RuntimeError(f"raw COPY: {stored} rows stored, expected {expected}")


@contextlib.contextmanager
def downstream_timer():  # noqa: ANN201
    """Time the work that follows a batch (rollups, then anomaly checks), which eager Celery runs in the request.

    A worker runs it as separate tasks, coalesced over ROLLUP_DELAY_SECONDS, after the batch is done.
    """
    spent = [0.0]
    originals = {name: getattr(hm_tasks, name) for name in ("recompute_daily_summaries", "check_anomalies")}

    def timed(original):  # noqa: ANN001, ANN202
        def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started

        return run

    for name, original in originals.items():
        setattr(hm_tasks, name, timed(original))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(hm_tasks, name, original)


def one_ours_run(owner: User, clock: Clock, n_batches: int, size: int, tag: str) -> tuple[float, float]:
    """Seconds from the first request's start to the last response, and of that the rollups' share."""
    device, key = register_device(owner=owner, name=f"ours {tag}")
    client = device_client(key)
    bodies = [
        json.dumps({"batch_id": f"{tag}-{i}", "readings": readings_json(clock.take(size), size)}).encode()
        for i in range(n_batches)
    ]
    total = 0.0
    ids = []
    with downstream_timer() as rollups:
        for body in bodies:
            elapsed, answer = post_batch(client, body)
            total += elapsed
            ids.append(answer["id"])
    check_done(ids, device, n_batches * size, size)
    return total, rollups[0]


def one_raw_run(pg: psycopg.Connection, owner: User, clock: Clock, n_batches: int, size: int, tag: str) -> float:
    source = raw_source(owner, f"raw {tag}")
    chunks = [copy_rows(owner, source.pk, readings_json(clock.take(size), size)) for _ in range(n_batches)]
    elapsed = raw_copy(pg, chunks)
    check_raw(source.pk, n_batches * size)
    return elapsed


def measure_ingest(
    owner: User, clock: Clock, pg: psycopg.Connection, runs: int, n_batches: int, size: int, label: str
) -> dict:
    total = n_batches * size
    err(f"{label}: warming up...")
    one_ours_run(owner, clock, n_batches, size, f"{label}-warm")
    one_raw_run(pg, owner, clock, n_batches, size, f"{label}-warm")
    ours, raw, done = [], [], []
    for i in range(runs):
        order = ("ours", "raw") if i % 2 == 0 else ("raw", "ours")
        for side in order:
            if side == "ours":
                seconds, rollups = one_ours_run(owner, clock, n_batches, size, f"{label}-{i}")
                ours.append(seconds)
                done.append(seconds - rollups)
            else:
                raw.append(one_raw_run(pg, owner, clock, n_batches, size, f"{label}-{i}"))
        err(f"  {label} run {i + 1}/{runs}: ours {ours[-1]:.3f} s, raw {raw[-1]:.3f} s")
    ours_s, raw_s, done_s = statistics.median(ours), statistics.median(raw), statistics.median(done)
    return {
        "done": done,
        "done_s": done_s,
        "done_ratio": raw_s / done_s,
        "ours": ours,
        "raw": raw,
        "ours_s": ours_s,
        "raw_s": raw_s,
        "ours_rps": total / ours_s,
        "raw_rps": total / raw_s,
        "ratio": raw_s / ours_s,
    }


def fmt_runs(seconds: list[float]) -> str:
    return ", ".join(f"{s:.3f}" for s in seconds)


def breakdown(owner: User, clock: Clock, size: int) -> dict[str, float]:
    """One more batch with the pieces of the path wrapped in timers (not part of the ratios)."""
    spent: dict[str, float] = {}
    originals = []

    def wrap(module, name: str, label: str) -> None:  # noqa: ANN001
        original = getattr(module, name)
        originals.append((module, name, original))

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

        setattr(module, name, timed)

    wrap(iot_views, "receive_batch", "receive_batch (envelope, canonical payload and its sha256, INSERT)")
    wrap(iot_tasks, "run_batch", "run_batch task (claim, parse, store, status)")
    wrap(hm_ingest, "validate_items", "  validate_items (validation of every reading)")
    wrap(hm_ingest, "_store_one_by_one", "  _store_one_by_one (daily totals: none here)")
    wrap(hm_ingest, "_insert_in_bulk", "  _insert_in_bulk (binary COPY; staging only on conflicts)")
    wrap(hm_tasks, "recompute_daily_summaries", "  recompute_daily_summaries task (rollups; on the task's commit)")
    device, key = register_device(owner=owner, name=f"breakdown {size}")
    body = json.dumps({"batch_id": "breakdown", "readings": readings_json(clock.take(size), size)}).encode()
    try:
        with CaptureQueriesContext(connection) as ctx:
            total, answer = post_batch(device_client(key), body)
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
    check_done([answer["id"]], device, size, size)
    insert_sql = sum(
        float(q["time"]) for q in ctx.captured_queries if q["sql"].startswith("INSERT INTO health_metrics_reading")
    )
    label_insert = "  _insert_in_bulk (binary COPY; staging only on conflicts)"
    if label_insert in spent:
        spent["    of which INSERT ... SELECT ... ON CONFLICT DO NOTHING"] = insert_sql
        spent["    of which COPY into reading_stage and the rest"] = spent[label_insert] - insert_sql
    accounted = sum(v for k, v in spent.items() if not k.startswith(" "))
    spent["rest of the request (middleware, JSON parse, auth, response)"] = total - accounted
    order = [
        "receive_batch",
        "  validate",
        "  _store",
        "  _insert",
        "    of which INSERT",
        "    of which COPY",
        "  recompute",
    ]
    order += ["run_batch", "rest"]
    spent = dict(sorted(spent.items(), key=lambda kv: next(i for i, p in enumerate(order) if kv[0].startswith(p))))
    print(f"\nWhere one {size:,}-reading batch's time goes ({total * 1000:.1f} ms in all, one instrumented run):")
    for label, seconds in spent.items():
        print(f"  {label:70s} {seconds * 1000:8.1f} ms  {seconds / total * 100:5.1f}%")
    slow = sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:6]
    print(f"  {len(ctx.captured_queries)} SQL statements through Django's cursor; the slowest:")
    for q in slow:
        sql = " ".join(q["sql"].split())
        print(f"    {float(q['time']) * 1000:8.1f} ms  {sql[:120]}{'...' if len(sql) > 120 else ''}")
    return {"total": total, **spent}


def timed_get(client: Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:300]!r}")
    return elapsed


def measure_auth(owner: User, clock: Clock, n: int, report: dict) -> None:
    device, key = register_device(owner=owner, name="auth")
    BARE_DEVICE["id"] = device.pk
    client = device_client(key)
    anonymous = Client()
    _, answer = post_batch(
        client, json.dumps({"batch_id": "auth", "readings": readings_json(clock.take(100), 100)}).encode()
    )
    batch_id = answer["id"]
    check_done([batch_id], device, 100, 100)
    urls = {
        "ours": (client, f"{INGEST_URL}{batch_id}/"),
        "bare": (anonymous, f"/bench/bare-batch/{batch_id}/"),
        "key_only": (client, f"/bench/key-only-batch/{batch_id}/"),
    }
    bodies = {name: c.get(u).json() for name, (c, u) in urls.items()}
    if not (bodies["ours"] == bodies["bare"] == bodies["key_only"]):
        raise RuntimeError("the batch endpoint and the bare views answer different bodies")
    if Client().get(urls["ours"][1]).status_code not in (401, 403):
        raise RuntimeError("the batch endpoint answered without a key")
    queries = {}
    for name, (c, u) in urls.items():
        with CaptureQueriesContext(connection) as ctx:
            timed_get(c, u)
        queries[name] = len(ctx.captured_queries)
    names = list(urls)
    for _ in range(20):
        for name in names:
            timed_get(*urls[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        for name in names if i % 2 == 0 else reversed(names):
            times[name].append(timed_get(*urls[name]))
    mean = {name: statistics.fmean(t) * 1000 for name, t in times.items()}
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}

    # The pure key check, and Django's default password hasher for contrast.
    generator = SaltedSha256KeyGenerator()
    hashed = DeviceAPIKey.objects.get(device=device).hashed_key
    if not generator.verify(key.split(".", 1)[-1], hashed) and not generator.verify(key, hashed):
        raise RuntimeError("could not verify the device key with SaltedSha256KeyGenerator")
    secret = key.split(".", 1)[-1] if generator.verify(key.split(".", 1)[-1], hashed) else key
    loops = 20_000
    verify_us = min(timeit.repeat(lambda: generator.verify(secret, hashed), number=loops, repeat=3)) / loops * 1e6
    from django.contrib.auth.hashers import check_password, make_password

    with override_settings(PASSWORD_HASHERS=global_settings.PASSWORD_HASHERS):
        started = time.perf_counter()
        encoded = make_password(secret)
        make_ms = (time.perf_counter() - started) * 1000
        checks = []
        for _ in range(2):
            started = time.perf_counter()
            ok = check_password(secret, encoded)
            checks.append((time.perf_counter() - started) * 1000)
        if not ok:
            raise RuntimeError("PBKDF2 check failed")
    pbkdf2_ms = min(checks)
    hasher_name = encoded.split("$", 1)[0]
    iterations = encoded.split("$")[1]

    # The measure: the same request with and without the device-key authentication. The real viewset
    # also does what is not authentication (its scoped queryset, throttle bookkeeping); that is reported apart.
    auth_ms = mean["key_only"] - mean["bare"]
    print(f"\nDevice-key authentication: GET ingest/{{id}}/ of a 100-reading batch, {n} requests each, alternated")
    labels = {
        "ours": "ours      with Api-Key, the real viewset",
        "key_only": "key only  bare view + DeviceKeyAuthentication",
        "bare": "bare      no authentication, AllowAny",
    }
    for name, label in labels.items():
        print(f"  {label:47s} mean {mean[name]:.3f} ms  median {med[name]:.3f} ms  {queries[name]} SQL")
    print(f"  auth_ms = mean(key only) - mean(bare) = {auth_ms:.3f} ms")
    viewset_ms = mean["ours"] - mean["bare"]
    print(f"  (the real viewset - bare, authentication and the rest of the viewset: {viewset_ms:.3f} ms)")
    print(f"  SaltedSha256KeyGenerator().verify: {verify_us:.2f} us per key (best of 3 x {loops:,})")
    print(
        f"  Django's default hasher for contrast ({hasher_name}, {iterations} iterations): "
        f"make_password {make_ms:.1f} ms, check_password {pbkdf2_ms:.1f} ms "
        f"({pbkdf2_ms * 1000 / verify_us:,.0f} x the salted SHA-256)"
    )
    report.update(
        auth_ms=auth_ms,
        auth_viewset_ms=mean["ours"] - mean["bare"],
        get_batch_ms=mean["ours"],
        get_batch_bare_ms=mean["bare"],
        get_batch_key_only_ms=mean["key_only"],
        get_batch_queries=queries["ours"],
        get_batch_bare_queries=queries["bare"],
        key_verify_us=verify_us,
        pbkdf2_check_ms=pbkdf2_ms,
        pbkdf2_iterations=int(iterations),
    )


# --- --explain ----------------------------------------------------------------------------------


def profile_big(owner: User, clock: Clock, top: int = 30) -> None:
    device, key = register_device(owner=owner, name="profile")
    body = json.dumps({"batch_id": "profile", "readings": readings_json(clock.take(BIG), BIG)}).encode()
    client = device_client(key)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    _, answer = post_batch(client, body)
    profiler.disable()
    wall = time.perf_counter() - started
    check_done([answer["id"]], device, BIG, BIG)
    stats = pstats.Stats(profiler).stats
    total = max(entry[3] for entry in stats.values())
    rows = sorted(
        ((cum, tot, calls, func) for func, (_, calls, tot, cum, _) in stats.items() if cum < 0.97 * total),
        reverse=True,
    )[:top]
    print(f"\n== cProfile of one 10,000-reading POST, task included ({wall:.2f} s under the profiler)")
    print("   cumulative ms  own ms      calls  function")
    for cum, tot, calls, (filename, line, name) in rows:
        where = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        print(f"   {cum * 1000:12.1f}  {tot * 1000:6.1f}  {calls:9d}  {where}:{line}({name})")
    own = sorted(((tot, calls, func) for func, (_, calls, tot, _, _) in stats.items()), reverse=True)[:12]
    print("   hottest by own time:")
    for tot, calls, (filename, line, name) in own:
        where = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        print(f"   {tot * 1000:12.1f} ms own  {calls:9d} calls  {where}:{line}({name})")


def explain_insert(owner: User, clock: Clock, report: dict) -> None:
    """EXPLAIN ANALYZE of the app's INSERT ... SELECT ... ON CONFLICT from a staged 10,000 rows (rolled back)."""
    source = raw_source(owner, "explain")
    rows = copy_rows(owner, source.pk, readings_json(clock.take(BIG), BIG))
    columns = ", ".join(COPY_COLUMNS)
    insert = (
        f"INSERT INTO health_metrics_reading ({columns}) SELECT {columns} FROM reading_stage "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    plain_insert = f"INSERT INTO health_metrics_reading ({columns}) SELECT {columns} FROM reading_stage"
    results = {}
    with raw_connection() as pg:
        for label, sql in (
            ("app INSERT ... ON CONFLICT DO NOTHING RETURNING", insert),
            ("plain INSERT ... SELECT", plain_insert),
        ):
            pg.execute(
                "CREATE TEMPORARY TABLE reading_stage (LIKE health_metrics_reading INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            started = time.perf_counter()
            with pg.cursor() as cursor, cursor.copy(f"COPY reading_stage ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            stage_s = time.perf_counter() - started
            plan = [r[0] for r in pg.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()]
            started = time.perf_counter()
            pg.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred FK checks, timed here
            fk_s = time.perf_counter() - started
            pg.rollback()
            results[label] = (stage_s, plan, fk_s)
    print("\n== EXPLAIN (ANALYZE, BUFFERS) of the INSERT from the staging table (10,000 rows; rolled back)")
    for label, (stage_s, plan, fk_s) in results.items():
        print(
            f"-- {label}  (COPY of 10,000 rows into the temp stage took {stage_s * 1000:.1f} ms; "
            f"deferred FK checks at SET CONSTRAINTS ALL IMMEDIATE {fk_s * 1000:.1f} ms)"
        )
        print("\n".join("   " + line for line in plan))
    report["explain_insert_ms"] = next(
        (
            float(x.split()[2])
            for x in results["app INSERT ... ON CONFLICT DO NOTHING RETURNING"][1]
            if x.startswith("Execution Time")
        ),
        None,
    )


def what_ifs(owner: User, clock: Clock, report: dict) -> None:
    """The pieces of the big-batch path timed on their own, as the app runs them."""
    import hashlib

    from iot_devices.services import canonical_payload

    items = readings_json(clock.take(BIG), BIG)
    body = json.dumps({"batch_id": "x", "readings": items}).encode()

    def best(fn, number: int = 3) -> float:  # noqa: ANN001
        return min(timeit.repeat(fn, number=1, repeat=number)) * 1000

    json_ms = best(lambda: json.loads(body))
    digest_ms = best(lambda: hashlib.sha256(canonical_payload(items)).hexdigest())
    tz = user_timezone(owner.pk)
    parse_ms = best(lambda: validate_items(items=items, tz=tz, now=timezone.now(), default_source=SourceKind.DEVICE))
    print("\n== What-ifs: pieces of the big-batch path on their own (best of 3, ms)")
    print(f"  json.loads of the {len(body):,}-byte body                 {json_ms:8.1f}")
    print(f"  canonical payload (sorted json.dumps) + sha256        {digest_ms:8.1f}")
    print(
        f"  validate_items of 10,000 readings                     {parse_ms:8.1f}  "
        f"({parse_ms / BIG * 1000:.1f} us a reading)"
    )
    # The payload as bytes (what the app stores) against JSONB (what it stored before): INSERT of a
    # scratch table's row, and the SELECT back.
    payload = canonical_payload(items)
    timings: dict[str, list[float]] = {"bytea": [], "jsonb": []}
    select_ms: dict[str, list[float]] = {"bytea": [], "jsonb": []}
    with raw_connection() as pg:
        pg.execute("CREATE TEMPORARY TABLE payload_whatif (kind text, bytes bytea, doc jsonb)")
        for _ in range(3):
            for kind, sql in (
                ("bytea", "INSERT INTO payload_whatif (kind, bytes) VALUES ('bytea', %s)"),
                ("jsonb", "INSERT INTO payload_whatif (kind, doc) VALUES ('jsonb', %s::jsonb)"),
            ):
                started = time.perf_counter()
                pg.execute(sql, [payload if kind == "bytea" else payload.decode()])
                pg.commit()
                timings[kind].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                column = "bytes" if kind == "bytea" else "doc"
                row = pg.execute(f"SELECT {column} FROM payload_whatif WHERE kind = %s LIMIT 1", [kind]).fetchone()
                if kind == "bytea":
                    json.loads(bytes(row[0]))
                select_ms[kind].append((time.perf_counter() - started) * 1000)
    print(
        f"  INSERT of the payload as bytea (now) / as JSONB (before)      {min(timings['bytea']):6.1f} / "
        f"{min(timings['jsonb']):6.1f}"
    )
    print(
        f"  SELECT and decode of it, bytea (now) / JSONB (before)         {min(select_ms['bytea']):6.1f} / "
        f"{min(select_ms['jsonb']):6.1f}"
    )
    # The app's store (COPY into a temp stage, INSERT ... ON CONFLICT, commit) vs COPY straight into the table.
    columns = ", ".join(COPY_COLUMNS)
    staged, direct = [], []
    with raw_connection() as pg:
        for i in range(3):
            for mode in ("staged", "direct") if i % 2 == 0 else ("direct", "staged"):
                dev = raw_source(owner, f"whatif {mode} {i}")
                rows = copy_rows(owner, dev.pk, readings_json(clock.take(BIG), BIG))
                started = time.perf_counter()
                if mode == "staged":
                    pg.execute(
                        "CREATE TEMPORARY TABLE IF NOT EXISTS reading_stage "
                        "(LIKE health_metrics_reading INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                    )
                    with pg.cursor() as cursor, cursor.copy(f"COPY reading_stage ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    pg.execute(
                        f"INSERT INTO health_metrics_reading ({columns}) SELECT {columns} FROM reading_stage "
                        "ON CONFLICT DO NOTHING RETURNING metric_type_id, local_date"
                    ).fetchall()
                    pg.execute("TRUNCATE reading_stage")
                else:
                    with pg.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
                        for row in rows:
                            copy.write_row(row)
                pg.commit()
                (staged if mode == "staged" else direct).append((time.perf_counter() - started) * 1000)
    staged_ms, direct_ms = statistics.median(staged), statistics.median(direct)
    print(
        f"  store 10,000 rows as the app does (COPY to temp stage + INSERT ... ON CONFLICT DO NOTHING + commit) "
        f"{staged_ms:.1f}\n  vs COPY straight into health_metrics_reading + commit                              "
        f"{direct_ms:.1f}   (medians of 3, alternated)"
    )
    report.update(
        whatif_store_staged_ms=staged_ms,
        whatif_store_direct_copy_ms=direct_ms,
        whatif_json_loads_ms=json_ms,
        whatif_payload_digest_ms=digest_ms,
        whatif_parse_readings_ms=parse_ms,
        whatif_payload_insert_bytea_ms=min(timings["bytea"]),
        whatif_payload_insert_jsonb_ms=min(timings["jsonb"]),
        whatif_payload_select_bytea_ms=min(select_ms["bytea"]),
        whatif_payload_select_jsonb_ms=min(select_ms["jsonb"]),
    )


# --- Main ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace, report: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version(), current_setting('shared_buffers'), current_setting('synchronous_commit'), "
            "current_setting('fsync')"
        )
        version, shared_buffers, sync_commit, fsync = cursor.fetchone()
    print(
        f"PostgreSQL: {version.split(',')[0]}; shared_buffers {shared_buffers}, synchronous_commit {sync_commit}, "
        f"fsync {fsync}; database {connection.settings_dict['NAME']}"
    )
    print(f"Python {sys.version.split()[0]}, Django {django.get_version()}, {os.cpu_count()} CPUs")
    from django.conf import settings

    print(
        f"Celery eager: {settings.CELERY_TASK_ALWAYS_EAGER} "
        "(the on-commit ingest task, and the rollups and checks after it, run inside the request)\n"
    )

    frozen = freeze_startup_objects()
    print(f"{frozen:,} objects of the loaded app frozen out of garbage collection, as a worker does once ready\n")

    clock = Clock()
    owner = make_owner("bench-device-owner@example.com")
    load_background(clock)

    with override_settings(ROOT_URLCONF=__name__), raw_connection() as pg:
        big = measure_ingest(owner, clock, pg, args.runs, 1, BIG, "big")
        print(f"\nBig batch: one POST of {BIG:,} readings (request start to batch done) vs raw COPY of the same rows")
        print(f"  {args.runs} runs each after a warm-up, alternated, a fresh device per run; medians")
        print(
            f"  ours  {big['ours_rps']:10,.0f} readings/s  median {big['ours_s']:.3f} s  "
            f"(runs: {fmt_runs(big['ours'])})"
        )
        print(
            f"  raw   {big['raw_rps']:10,.0f} readings/s  median {big['raw_s']:.3f} s  (runs: {fmt_runs(big['raw'])})"
        )
        print(
            f"  ours to done (readings stored, batch marked done, rollups and checks enqueued) median "
            f"{big['done_s']:.3f} s, {BIG / big['done_s']:,.0f} readings/s"
        )
        print(f"  big_batch_ratio = raw_copy_s / ours_to_done_s = {big['done_ratio']:.3f}")
        print(
            f"  with the downstream tasks too (rollups and anomaly checks, which eager Celery runs in the request "
            f"and a worker runs apart, coalesced): ratio {big['ratio']:.3f}"
        )

        small = measure_ingest(owner, clock, pg, args.small_runs, SMALL_BATCHES, SMALL_SIZE, "small")
        print(
            f"\nSmall batches: {SMALL_BATCHES} POSTs of {SMALL_SIZE} readings vs {SMALL_BATCHES} COPYs of {SMALL_SIZE} "
            "rows, each COPY in its own transaction"
        )
        print(f"  {args.small_runs} runs each after a warm-up, alternated, a fresh device per run; medians")
        print(
            f"  ours  {small['ours_rps']:10,.0f} readings/s  median {small['ours_s']:.3f} s  "
            f"({small['ours_s'] / SMALL_BATCHES * 1000:.1f} ms a batch; runs: {fmt_runs(small['ours'])})"
        )
        print(
            f"  raw   {small['raw_rps']:10,.0f} readings/s  median {small['raw_s']:.3f} s  "
            f"({small['raw_s'] / SMALL_BATCHES * 1000:.2f} ms a COPY; runs: {fmt_runs(small['raw'])})"
        )
        print(
            f"  ours to done: median {small['done_s']:.3f} s ({small['done_s'] / SMALL_BATCHES * 1000:.1f} ms a batch)"
        )
        print(f"  small_batches_ratio = raw_s / ours_to_done_s = {small['done_ratio']:.3f}")
        print(f"  with the downstream tasks too: ratio {small['ratio']:.3f}")
        report.update(
            big_batch_ratio=big["done_ratio"],
            small_batches_ratio=small["done_ratio"],
            big_batch_ratio_with_downstream=big["ratio"],
            small_batches_ratio_with_downstream=small["ratio"],
            big_ours_s=big["done_s"],
            big_ours_with_downstream_s=big["ours_s"],
            big_raw_s=big["raw_s"],
            big_ours_readings_per_s=big["ours_rps"],
            big_raw_readings_per_s=big["raw_rps"],
            small_ours_s=small["done_s"],
            small_ours_with_downstream_s=small["ours_s"],
            small_raw_s=small["raw_s"],
            small_ours_readings_per_s=small["ours_rps"],
            small_raw_readings_per_s=small["raw_rps"],
            small_ours_ms_per_batch=small["done_s"] / SMALL_BATCHES * 1000,
        )

        spent = breakdown(owner, clock, BIG)
        for label, key in (
            ("receive_batch", "breakdown_receive_ms"),
            ("run_batch task", "breakdown_task_ms"),
            ("  validate_items", "breakdown_parse_ms"),
            ("  _insert_in_bulk", "breakdown_insert_fn_ms"),
            ("    of which INSERT", "breakdown_insert_select_ms"),
            ("  recompute_daily", "breakdown_rollups_ms"),
            ("rest of the request", "breakdown_rest_ms"),
        ):
            match = next((v for k, v in spent.items() if k.startswith(label)), None)
            if match is not None:
                report[key] = match * 1000

        small_spent = breakdown(owner, clock, SMALL_SIZE)
        for label, key in (
            ("  recompute_daily", "small_breakdown_rollups_ms"),
            ("run_batch task", "small_breakdown_task_ms"),
        ):
            match = next((v for k, v in small_spent.items() if k.startswith(label)), None)
            if match is not None:
                report[key] = match * 1000

        measure_auth(owner, clock, args.requests, report)

        if args.explain:
            profile_big(owner, clock)
            explain_insert(owner, clock, report)
            what_ifs(owner, clock, report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=positive, default=5, help="big-batch runs per side (default 5)")
    parser.add_argument("--small-runs", type=positive, default=3, help="small-batches runs per side (default 3)")
    parser.add_argument("--requests", type=positive, default=500, help="GET requests per side for auth (default 500)")
    parser.add_argument(
        "--explain",
        action="store_true",
        default=os.environ.get("BENCH_EXPLAIN", "") not in ("", "0"),
        help="also profile, EXPLAIN ANALYZE and time the pieces (or BENCH_EXPLAIN=1)",
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    logging.getLogger("django_structlog").setLevel(logging.WARNING)
    logging.getLogger("celery").setLevel(logging.WARNING)

    return run_in_throwaway_database(
        "bench_ingest", lambda report: run(args, report), ["big_batch_ratio", "small_batches_ratio", "auth_ms"]
    )


if __name__ == "__main__":
    sys.exit(main())
