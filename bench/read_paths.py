"""Read-path benchmark: the readings list and the summaries, measured side by side with bare baselines.

Run with `make bench` (PostgreSQL and Redis from the environment, settings config.settings.test).
Everything happens in a throwaway PostgreSQL database created here and dropped at the end,
even on failure; the developer's own databases are never touched.

What it does:
  1. loads one year of minute heart rate for one user (525,600 readings, America/New_York)
     plus other users' noise, with COPY; VACUUM ANALYZE; builds that user's daily rollups;
  2. readings list (GET /api/v1/health-metrics/?page_size=100) vs a bare DRF view returning
     the same 100 rows from .values(), both through the test client with a real JWT,
     alternated request by request: list_ratio = ours_rps / bare_rps;
  3. month summary of the year vs the raw SQL aggregate: summary_ratio = ours_s / raw_s;
     week summary likewise (week_summary_ratio), and the day summary (served from the
     daily rollups) vs the same raw SQL by day (day_summary_ratio);
  4. SQL queries for the list at page_size 10 and 100.
Nothing passes or fails on time. The last line of stdout is one JSON object with the figures.

`--explain` (or BENCH_EXPLAIN=1) adds, after the measurements: EXPLAIN (ANALYZE, BUFFERS) of
every query the list and month-summary endpoints issue, a cProfile of the list, and what-if
experiments run in the same throwaway database (count strategies, a cursor-paginated list,
a covering index, a month rollup table). They never change the figures measured before them.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import math
import os
import pstats
import random
import re
import statistics
import sys
import time
import uuid
import warnings
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from _harness import err, positive, run_in_throwaway_database  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402
from rest_framework.decorators import action  # noqa: E402
from rest_framework.pagination import CursorPagination  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from accounts.authentication import JWTAuthentication  # noqa: E402
from accounts.models import User  # noqa: E402
from accounts.selectors import user_timezone  # noqa: E402
from accounts.tokens import issue_tokens  # noqa: E402
from health_metrics.api.serializers import SummaryQuerySerializer  # noqa: E402
from health_metrics.api.views import ReadingViewSet  # noqa: E402
from health_metrics.display import round_value  # noqa: E402
from health_metrics.models import MetricType, Reading, SourceKind  # noqa: E402
from health_metrics.services import create_data_source, recompute_daily_summaries  # noqa: E402

HEART_RATE_ID = 2
YEAR = 2025
MINUTES = 525_600  # 365 days
USER_TZ = "America/New_York"
NOISE_USERS = 5
NOISE_PER_USER = 50_000
SEED = 20250101

BARE_FIELDS = (
    "id",
    "user_id",
    "metric_type_id",
    "value",
    "secondary_value",
    "original_value",
    "original_secondary_value",
    "original_unit",
    "recorded_at",
    "utc_offset_minutes",
    "ended_at",
    "local_date",
    "data_source_id",
    "client_id",
    "external_id",
    "notes",
    "is_abnormal",
    "created_at",
    "updated_at",
)
COPY_COLUMNS = (
    "id",
    "user_id",
    "metric_type_id",
    "value",
    "secondary_value",
    "original_value",
    "original_secondary_value",
    "original_unit",
    "recorded_at",
    "utc_offset_minutes",
    "ended_at",
    "local_date",
    "data_source_id",
    "client_id",
    "external_id",
    "is_daily_total",
    "is_abnormal",
    "notes",
    "created_at",
    "updated_at",
)

RAW_SUMMARY_SQL = """
SELECT date_trunc(%s, local_date) AS m, count(*), min(value), max(value), avg(value),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY value), sum(value)
FROM health_metrics_reading
WHERE user_id = %s AND metric_type_id = 2 AND local_date BETWEEN %s AND %s
GROUP BY 1 ORDER BY 1 DESC
"""


# --- The bare baseline and the what-if variants (mounted by this module's URLconf) ------------


class BareReadingsView(APIView):
    """The same 100 rows as the list (each with its source's kind), with the same authentication, and nothing else."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):  # noqa: ANN001, ANN201
        rows = (
            Reading.objects.filter(user=request.user)
            .order_by("-recorded_at", "-id")
            .values(*BARE_FIELDS, source=F("data_source__kind"))[:100]
        )
        return Response(list(rows))


class NoCountCursorPagination(CursorPagination):
    """What-if: keyset pagination on the list's own ordering; no COUNT(*)."""

    ordering = ("-recorded_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 1000


class CursorReadingViewSet(ReadingViewSet):
    pagination_class = NoCountCursorPagination


MONTH_ROLLUP_TABLE = "bench_monthly_summary"


def month_buckets_from_rollup(*, patient, metric_type, start: date, end: date) -> list[dict]:
    """What-if: month buckets read from a precomputed month rollup table (exact medians)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT month, count, min, max, mean, median, sum,
                       secondary_min, secondary_max, secondary_mean, secondary_median
                FROM {MONTH_ROLLUP_TABLE}
                WHERE user_id = %s AND metric_type_id = %s AND month BETWEEN %s AND %s
                ORDER BY month DESC""",
            [patient.pk, metric_type.pk, start.replace(day=1), end],
        )
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    buckets = []
    for row in rows:
        first = row.pop("month")
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        buckets.append({"start": first, "end": last, **row})
    return buckets


class MonthRollupReadingViewSet(ReadingViewSet):
    """The summary action as in production, but months come from the month rollup table."""

    @action(detail=False)
    def summary(self, request):  # noqa: ANN001, ANN201
        patient = self.subject()
        tz = user_timezone(patient)
        query = SummaryQuerySerializer(data=request.query_params, context={"tz": tz})
        query.is_valid(raise_exception=True)
        q = query.validated_data
        buckets = month_buckets_from_rollup(
            patient=patient, metric_type=q["metric_type"], start=q["start_date"], end=q["end_date"]
        )
        return Response(
            {
                "metric_type": q["metric_type"].code,
                "unit": q["metric_type"].unit,
                "period": q["period"],
                "start_date": q["start_date"],
                "end_date": q["end_date"],
                "timezone": str(tz),
                "buckets": buckets,
            }
        )


urlpatterns = [
    path("bench/bare-readings/", BareReadingsView.as_view()),
    path("bench/cursor-readings/", CursorReadingViewSet.as_view({"get": "list"})),
    path("bench/rollup-summary/", MonthRollupReadingViewSet.as_view({"get": "summary"})),
    path("", include("config.urls")),
]


# --- Loading ------------------------------------------------------------------------------------


def heart_rate_rows(user_id: uuid.UUID, source_id: uuid.UUID, rng: random.Random, now: datetime):
    """One reading a minute for a year: ~57/min at night, 70-90 by day, some workouts above 120."""
    tz = zoneinfo.ZoneInfo(USER_TZ)
    start = datetime(YEAR, 1, 1, tzinfo=tz).astimezone(UTC)
    workouts: dict[date, tuple[float, float]] = {}
    day = date(YEAR, 1, 1)
    while day.year == YEAR:
        if rng.random() < 0.35:  # a 30-75 minute workout on about a third of the days
            begin = rng.uniform(6.5, 19.0)
            workouts[day] = (begin, begin + rng.uniform(0.5, 1.25))
        day += timedelta(days=1)
    offset_cache: dict[int, tuple[int, date, int]] = {}
    minute = timedelta(minutes=1)
    for i in range(MINUTES):
        at = start + i * minute
        hour_index = i // 60
        cached = offset_cache.get(hour_index)
        if cached is None:  # the local hour's offset and date; one zoneinfo call an hour
            local = at.astimezone(tz)
            offset = int(local.utcoffset().total_seconds() // 60)
            cached = (offset, local.date(), local.hour)
            offset_cache.clear()
            offset_cache[hour_index] = cached
        offset, local_date, local_hour = cached
        hour = local_hour + (i % 60) / 60
        # 57.5 at night; by day 72 .. 86 .. 72
        base = 72 + 14 * math.sin(math.pi * (hour - 6.0) / 16.0) if 6.0 <= hour < 22.0 else 57.5
        window = workouts.get(local_date)
        if window and window[0] <= hour < window[1]:
            base = 125 + 15 * math.sin(math.pi * (hour - window[0]) / (window[1] - window[0]))
        value = float(round(base + rng.gauss(0, 3.0)))
        yield (
            uuid.uuid4(),
            user_id,
            HEART_RATE_ID,
            value,
            None,
            value,
            None,
            "/min",
            at,
            offset,
            None,
            local_date,
            source_id,
            None,
            "",
            False,
            value < 50 or value > 120,
            "",
            now,
            now,
        )


NOISE_TYPES = {  # type id: (low, high) of plausible everyday values, canonical units
    2: (48, 150),  # heart_rate
    6: (10, 24),  # respiratory_rate
    7: (90, 100),  # oxygen_saturation
    8: (35.8, 38.4),  # body_temperature
    9: (60, 220),  # blood_glucose
    10: (60, 220),  # glucose_cgm
    16: (55, 95),  # body_weight
    40: (0, 100),  # stress_level
}


def noise_rows(
    user_id: uuid.UUID, source_id: uuid.UUID, tz_name: str, count: int, rng: random.Random, now: datetime, types: dict
):
    tz = zoneinfo.ZoneInfo(tz_name)
    start = datetime(YEAR, 1, 1, tzinfo=UTC).timestamp()
    span = 365 * 86400
    type_ids = list(NOISE_TYPES)
    taken: set[tuple[int, datetime]] = set()  # one reading per source, type and moment
    for _ in range(count):
        type_id = rng.choice(type_ids)
        metric_type = types[type_id]
        low, high = NOISE_TYPES[type_id]
        value = round(rng.uniform(low, high), 1)
        at = datetime.fromtimestamp(start + rng.random() * span, tz=UTC).replace(microsecond=0)
        while (type_id, at) in taken:
            at += timedelta(seconds=1)
        taken.add((type_id, at))
        local = at.astimezone(tz)
        yield (
            uuid.uuid4(),
            user_id,
            type_id,
            value,
            None,
            value,
            None,
            metric_type.unit,
            at,
            int(local.utcoffset().total_seconds() // 60),
            None,
            local.date(),
            source_id,
            None,
            "",
            False,
            not metric_type.is_normal(value),
            "",
            now,
            now,
        )


def copy_rows(rows, total: int, label: str, progress: list[int]) -> int:
    """COPY rows into health_metrics_reading in one transaction; progress every 100k rows overall."""
    sql = f"COPY health_metrics_reading ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    written = 0
    with transaction.atomic(), connection.cursor() as django_cursor:
        pg = django_cursor.connection  # the psycopg 3 connection
        with pg.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
                progress[0] += 1
                if progress[0] % 100_000 == 0:
                    err(f"  loaded {progress[0]:,} rows ({label}: {written:,}/{total:,})")
    return written


def drop_secondary_indexes_and_foreign_keys() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The usual bulk-load order: COPY without secondary indexes and foreign-key triggers, then rebuild.

    With them in place COPY runs at about 38k rows/s here: Django's foreign keys are DEFERRABLE
    INITIALLY DEFERRED, so every row queues two trigger events checked at commit, and seven
    indexes take a random insert each. Rebuilt from their own definitions afterwards, and the
    foreign keys re-validated over every row, so the end state is the migrated schema.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'health_metrics_reading' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'health_metrics_reading'::regclass)"
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'health_metrics_reading'::regclass AND contype = 'f'"
        )
        foreign_keys = cursor.fetchall()
        for name, _ in foreign_keys:
            cursor.execute(f'ALTER TABLE health_metrics_reading DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    return indexes, foreign_keys


def restore_indexes_and_foreign_keys(indexes: list[tuple[str, str]], foreign_keys: list[tuple[str, str]]) -> None:
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE health_metrics_reading ADD CONSTRAINT "{name}" {definition}')


def watch(user: User) -> uuid.UUID:
    """The data source (a device) the user's loaded readings come from."""
    return create_data_source(user=user, kind=SourceKind.DEVICE, name="Bench watch").pk


def make_user(email: str, tz_name: str) -> User:
    user = User.objects.create_user(email, "bench-password-123")
    user.profile.timezone = tz_name
    user.profile.save(update_fields=["timezone"])
    return user


def load(report: dict) -> tuple[User, list[User]]:
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    user = make_user("bench-heart@example.com", USER_TZ)
    zones = ["UTC", "Europe/Paris", "Asia/Tokyo", "America/Los_Angeles", "Australia/Sydney"]
    others = [make_user(f"bench-noise-{n}@example.com", zones[n % len(zones)]) for n in range(NOISE_USERS)]
    types = {t.id: t for t in MetricType.objects.filter(id__in=list(NOISE_TYPES))}
    if (types[HEART_RATE_ID].code, types[HEART_RATE_ID].unit) != ("heart_rate", "/min"):
        raise RuntimeError("metric type 2 is not heart_rate in /min: the catalog migration changed")

    progress = [0]
    started = time.perf_counter()
    indexes, foreign_keys = drop_secondary_indexes_and_foreign_keys()
    loaded = copy_rows(heart_rate_rows(user.pk, watch(user), rng, now), MINUTES, "heart rate", progress)
    hr_seconds = time.perf_counter() - started
    for other in others:
        loaded += copy_rows(
            noise_rows(other.pk, watch(other), other.profile.timezone, NOISE_PER_USER, rng, now, types),
            NOISE_PER_USER,
            f"noise {other.email}",
            progress,
        )
    copy_seconds = time.perf_counter() - started
    rebuild_started = time.perf_counter()
    restore_indexes_and_foreign_keys(indexes, foreign_keys)
    rebuild_seconds = time.perf_counter() - rebuild_started
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE health_metrics_reading")
    vacuum_seconds = time.perf_counter() - started

    days = sorted(
        set(
            Reading.objects.filter(user=user, metric_type_id=HEART_RATE_ID)
            .order_by()
            .values_list("local_date", flat=True)
            .distinct()
        )
    )
    started = time.perf_counter()
    rollups = recompute_daily_summaries(user_id=user.pk, days={(HEART_RATE_ID, d) for d in days})
    rollup_seconds = time.perf_counter() - started
    counts = []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if re.fullmatch(r"health_metrics_\w*summary", table):
                cursor.execute(f'VACUUM ANALYZE "{table}"')
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE user_id = %s', [user.pk])
                counts.append(f"{table} {cursor.fetchone()[0]}")
    rollup_rows = ", ".join(counts)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('health_metrics_reading')")
        table_bytes = cursor.fetchone()[0]

    report.update(
        rows_loaded=loaded,
        heart_rate_rows=MINUTES,
        load_s=load_seconds,
        load_rows_per_s=loaded / load_seconds,
        copy_s=copy_seconds,
        index_rebuild_s=rebuild_seconds,
        heart_rate_load_rows_per_s=MINUTES / hr_seconds,
        vacuum_analyze_s=vacuum_seconds,
        rollup_days=rollups,
        rollup_s=rollup_seconds,
        reading_table_mb=table_bytes / 2**20,
    )
    print(
        f"Loaded {loaded:,} readings in {load_seconds:.1f} s, {loaded / load_seconds:,.0f} rows/s overall: "
        f"COPY {copy_seconds:.1f} s ({loaded / copy_seconds:,.0f} rows/s;"
    )
    print(
        f"  heart rate {MINUTES:,} rows at {MINUTES / hr_seconds:,.0f} rows/s, plus {NOISE_USERS} users x "
        f"{NOISE_PER_USER:,} noise), then {len(indexes)} indexes rebuilt and {len(foreign_keys)} foreign keys "
        f"validated in {rebuild_seconds:.1f} s"
    )
    print(f"  health_metrics_reading with its indexes: {table_bytes / 2**20:,.0f} MiB")
    print(f"VACUUM ANALYZE health_metrics_reading: {vacuum_seconds:.1f} s")
    print(
        f"Rollups: recompute_daily_summaries for {len(days)} days of heart rate took {rollup_seconds:.2f} s "
        f"({rollup_seconds / max(len(days), 1) * 1000:.1f} ms a day); rows now: {rollup_rows}"
    )
    return user, others


# --- Measuring ----------------------------------------------------------------------------------


def bearer_client(user: User) -> Client:
    return Client(headers={"authorization": f"Bearer {issue_tokens(user)['access']}"})


def timed_get(client: Client, url: str) -> tuple[float, object]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:500]!r}")
    return elapsed, response


def timed_sql(sql: str, params: list | None) -> tuple[float, list]:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return time.perf_counter() - started, rows


def alternate(n: int, warmup: int, runners: dict) -> dict[str, list[float]]:
    """Run each callable n times after `warmup` untimed rounds, alternating the order every round."""
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        for name in names if i % 2 == 0 else reversed(names):
            times[name].append(runners[name]())
    return times


def describe(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return (
        f"mean {statistics.fmean(seconds) * 1000:.2f} ms, median {statistics.median(seconds) * 1000:.2f} ms, "
        f"p95 {p95 * 1000:.2f} ms"
    )


LIST_URL = "/api/v1/health-metrics/?page_size=100"
BARE_URL = "/bench/bare-readings/"


def measure_list(user: User, n: int, report: dict) -> None:
    client = bearer_client(user)
    _, ours = timed_get(client, LIST_URL)
    _, bare = timed_get(client, BARE_URL)
    body = ours.json()
    ours_ids = [row["id"] for row in body["results"]]
    bare_ids = [str(row["id"]) for row in bare.json()]
    if ours_ids != bare_ids or len(ours_ids) != 100 or body["count"] != MINUTES:
        raise RuntimeError("the list and the bare view disagree on the newest 100 readings")

    times = alternate(
        n,
        20,
        {
            "ours": lambda: timed_get(client, LIST_URL)[0],
            "bare": lambda: timed_get(client, BARE_URL)[0],
        },
    )
    ours_rps = n / sum(times["ours"])
    bare_rps = n / sum(times["bare"])
    report.update(
        list_rps=ours_rps,
        bare_rps=bare_rps,
        list_ratio=ours_rps / bare_rps,
        list_ms=statistics.fmean(times["ours"]) * 1000,
        bare_ms=statistics.fmean(times["bare"]) * 1000,
        list_bytes=len(ours.content),
        bare_bytes=len(bare.content),
    )
    print(f"\nList: GET {LIST_URL} vs bare .values() view, {n} requests each, alternated, after 20 warm-up")
    print(f"  ours  {ours_rps:8.1f} req/s  ({describe(times['ours'])}; {len(ours.content):,} bytes)")
    print(f"  bare  {bare_rps:8.1f} req/s  ({describe(times['bare'])}; {len(bare.content):,} bytes)")
    print(f"  list_ratio = ours_rps / bare_rps = {ours_rps / bare_rps:.3f}")


def count_queries(user: User, report: dict) -> dict[str, list[str]]:
    client = bearer_client(user)
    captured = {}
    for size in (10, 100):
        url = f"/api/v1/health-metrics/?page_size={size}"
        with CaptureQueriesContext(connection) as ctx:
            timed_get(client, url)
        captured[url] = [q["sql"] for q in ctx.captured_queries]
        report[f"queries_page_{size}"] = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        timed_get(client, BARE_URL)
    report["queries_bare"] = len(ctx.captured_queries)
    print("\nSQL queries per request")
    print(f"  GET health-metrics/?page_size=10   {report['queries_page_10']}")
    print(f"  GET health-metrics/?page_size=100  {report['queries_page_100']}")
    print(f"  bare view (100 rows)               {report['queries_bare']}")
    for sql, times in collapse(captured["/api/v1/health-metrics/?page_size=100"]):
        print(f"    - {shorten(sql)}" + (f"   (x {times})" if times > 1 else ""))
    return captured


def collapse(queries: list[str]) -> list[tuple[str, int]]:
    """Consecutive identical statements as one line with a count."""
    out: list[tuple[str, int]] = []
    for sql in queries:
        if out and out[-1][0] == sql:
            out[-1] = (sql, out[-1][1] + 1)
        else:
            out.append((sql, 1))
    return out


def shorten(sql: str, width: int = 150) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def summary_url(period: str, start: date, end: date) -> str:
    return (
        f"/api/v1/health-metrics/summary/?metric_type=heart_rate&period={period}"
        f"&start_date={start.isoformat()}&end_date={end.isoformat()}"
    )


def check_buckets(buckets: list[dict], raw_rows: list, period: str) -> None:
    if len(buckets) != len(raw_rows):
        raise RuntimeError(f"{period} summary: {len(buckets)} buckets, raw SQL {len(raw_rows)}")
    for bucket, row in zip(buckets, raw_rows, strict=True):
        start = row[0].date() if isinstance(row[0], datetime) else row[0]
        if (
            bucket["start"] != start.isoformat()
            or bucket["count"] != row[1]
            # Answers are rounded to heart rate's catalog precision (0 decimals, half up; health_metrics/display.py).
            or bucket["median"] != round_value(row[5], 0)
            or bucket["mean"] != round_value(row[4], 0)
        ):
            raise RuntimeError(f"{period} summary disagrees with the raw SQL at {start}: {bucket} vs {row}")


def measure_summaries(user: User, n: int, report: dict) -> None:
    client = bearer_client(user)
    start, end = date(YEAR, 1, 1), date(YEAR, 12, 31)
    results = {}
    for period, trunc in (("month", "month"), ("week", "week"), ("day", "day")):
        url = summary_url(period, start, end)
        params = [trunc, user.pk, start, end]
        with CaptureQueriesContext(connection) as ctx:
            _, response = timed_get(client, url)
        tables = sorted({t for q in ctx.captured_queries for t in re.findall(r'FROM "(health_metrics_\w+)"', q["sql"])})
        _, raw_rows = timed_sql(RAW_SUMMARY_SQL, params)
        check_buckets(response.json()["buckets"], raw_rows, period)
        times = alternate(
            n,
            2,
            {
                "ours": lambda url=url: timed_get(client, url)[0],
                "raw": lambda params=params: timed_sql(RAW_SUMMARY_SQL, params)[0],
            },
        )
        results[period] = times
        ours_s, raw_s = statistics.fmean(times["ours"]), statistics.fmean(times["raw"])
        print(f"\nSummary period={period} for {YEAR} ({len(raw_rows)} buckets), {n} runs each, alternated")
        print(f"  ours  GET {url}")
        print(f"        {describe(times['ours'])}")
        print(
            f"  raw   SQL date_trunc('{trunc}') + percentile_cont over the readings   (ours reads {', '.join(tables)})"
        )
        print(f"        {describe(times['raw'])}")
        print(f"  ratio ours_s / raw_s = {ours_s / raw_s:.3f}   (raw_s / ours_s = {raw_s / ours_s:.2f})")
        prefix = "" if period == "month" else f"{period}_"
        report[f"{prefix}summary_ms"] = ours_s * 1000
        report[f"raw_{prefix}summary_ms"] = raw_s * 1000
        report[f"{prefix}summary_ratio"] = ours_s / raw_s


# --- --explain: plans, profile, what-ifs -------------------------------------------------------------


def explain(sql: str) -> tuple[float, str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    execution = next((float(line.split()[2]) for line in lines if line.startswith("Execution Time")), float("nan"))
    return execution, "\n".join(lines)


def explain_endpoint(client: Client, url: str) -> None:
    timed_get(client, url)  # warm
    with CaptureQueriesContext(connection) as ctx:
        elapsed, _ = timed_get(client, url)
    print(f"\n== EXPLAIN ANALYZE of the queries of GET {url} (request took {elapsed * 1000:.1f} ms)")
    seconds: dict[str, float] = {}
    for query in ctx.captured_queries:
        seconds[query["sql"]] = seconds.get(query["sql"], 0.0) + float(query["time"])
    for sql, times in collapse([q["sql"] for q in ctx.captured_queries]):
        if not sql.lstrip().upper().startswith("SELECT"):
            print(f"-- {shorten(sql)}  (not a SELECT)")
            continue
        explain(sql)  # warm the buffers the same way the request did
        execution, plan = explain(sql)
        repeat = f", run {times} times in a row" if times > 1 else ""
        print(f"-- {shorten(sql, 400)}")
        print(
            f"-- execution {execution:.2f} ms{repeat} (Django saw {seconds[sql] * 1000:.2f} ms in all "
            "for this statement)"
        )
        print("\n".join("   " + line for line in plan.splitlines()))


def explain_raw(user: User, start: date, end: date) -> None:
    with connection.cursor() as cursor:
        sql = cursor.mogrify(RAW_SUMMARY_SQL, ["month", user.pk, start, end])
    explain(sql)
    execution, plan = explain(sql)
    print(f"\n== EXPLAIN ANALYZE of the raw month SQL (execution {execution:.2f} ms)")
    print("\n".join("   " + line for line in plan.splitlines()))


def profile_list(client: Client, requests: int = 50, top: int = 30) -> None:
    """cProfile of the list; the middleware and dispatch chain that wraps everything is left out."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(requests):
        timed_get(client, LIST_URL)
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, ncalls, tottime, cumtime, callers)}
    total = max(entry[3] for entry in stats.values())
    rows = sorted(
        ((cum, tot, calls, func) for func, (_, calls, tot, cum, _) in stats.items() if cum < 0.9 * total),
        reverse=True,
    )[:top]
    print(
        f"\n== cProfile of {requests} x GET {LIST_URL} ({wall / requests * 1000:.1f} ms a request under the profiler)"
    )
    print("   cumulative ms/request  own ms/request  calls/request  function")
    for cum, tot, calls, (filename, line, name) in rows:
        where = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        per_request = f"{cum / requests * 1000:10.2f}  {tot / requests * 1000:14.2f}  {calls / requests:13.0f}"
        print(f"   {per_request}  {where}:{line}({name})")


def mean_sql_ms(sql: str, params: list | None, n: int = 20) -> float:
    timed_sql(sql, params)
    return statistics.fmean(timed_sql(sql, params)[0] for _ in range(n)) * 1000


def mean_get_ms(client: Client, url: str, n: int) -> float:
    for _ in range(2):
        timed_get(client, url)
    return statistics.fmean(timed_get(client, url)[0] for _ in range(n)) * 1000


def what_ifs(user: User, n_list: int, n_summary: int, report: dict) -> None:
    client = bearer_client(user)
    uid = [user.pk]
    print("\n== What-if experiments (in the throwaway database; the figures above are unaffected)")

    # List: where the COUNT(*) goes, and a list without it.
    exact = mean_sql_ms("SELECT count(*) FROM health_metrics_reading WHERE user_id = %s", uid)
    capped = mean_sql_ms(
        "SELECT count(*) FROM (SELECT 1 FROM health_metrics_reading WHERE user_id = %s LIMIT 10001) t", uid
    )
    from_rollups = mean_sql_ms(
        "SELECT coalesce(sum(count), 0) FROM health_metrics_dailysummary WHERE user_id = %s", uid
    )
    page = mean_sql_ms(
        "SELECT * FROM health_metrics_reading WHERE user_id = %s ORDER BY recorded_at DESC, id DESC LIMIT 100", uid
    )
    print(
        f"  list COUNT(*) exact for {MINUTES:,} rows: {exact:.2f} ms; capped at 10,001: {capped:.2f} ms; "
        f"sum(count) of the daily rollups: {from_rollups:.2f} ms"
    )
    print(f"  the page query itself (100 rows): {page:.2f} ms")
    variants = {
        "ours (page numbers with COUNT)": LIST_URL,
        "ours with cursor pagination (no COUNT)": "/bench/cursor-readings/?page_size=100",
        "bare .values() view": BARE_URL,
    }
    expected = timed_get(client, LIST_URL)[1].json()["results"]
    queries = {}
    for name, url in variants.items():
        with CaptureQueriesContext(connection) as ctx:
            _, response = timed_get(client, url)
        queries[name] = len(ctx.captured_queries)
        if url != BARE_URL and response.json()["results"] != expected:
            raise RuntimeError(f"list variant {name!r} answered other results")
    times = alternate(n_list, 10, {name: lambda url=url: timed_get(client, url)[0] for name, url in variants.items()})
    rps = {name: n_list / sum(t) for name, t in times.items()}
    bare_rps = rps["bare .values() view"]
    print(f"  list variants, {n_list} requests each, alternated (same JSON results as ours):")
    for name in variants:
        print(
            f"    {name:42s} {rps[name]:7.1f} req/s  {statistics.fmean(times[name]) * 1000:7.2f} ms  "
            f"{queries[name]:3d} queries  ratio vs bare {rps[name] / bare_rps:.3f}"
        )
    report.update(
        whatif_count_exact_ms=exact,
        whatif_count_capped_ms=capped,
        whatif_count_from_rollups_ms=from_rollups,
        whatif_page_query_ms=page,
        whatif_cursor_list_ratio=rps["ours with cursor pagination (no COUNT)"] / bare_rps,
    )

    # Summary: what the median costs in the raw SQL.
    start, end = date(YEAR, 1, 1), date(YEAR, 12, 31)
    no_median = RAW_SUMMARY_SQL.replace("percentile_cont(0.5) WITHIN GROUP (ORDER BY value)", "0")
    raw_ms = mean_sql_ms(RAW_SUMMARY_SQL, ["month", user.pk, start, end], n_summary)
    no_median_ms = mean_sql_ms(no_median, ["month", user.pk, start, end], n_summary)
    month_url = summary_url("month", start, end)
    with CaptureQueriesContext(connection) as ctx:
        timed_get(client, month_url)
    ours_sql = max(ctx.captured_queries, key=lambda q: float(q["time"]))["sql"]
    ours_sql_ms = mean_sql_ms(ours_sql, None, n_summary)
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    raw_nojit_ms = mean_sql_ms(RAW_SUMMARY_SQL, ["month", user.pk, start, end], n_summary)
    ours_nojit_ms = mean_get_ms(client, month_url, n_summary)
    with connection.cursor() as cursor:
        cursor.execute("RESET jit")
    print(
        f"  month summary SQL: the endpoint's slowest statement {ours_sql_ms:.1f} ms vs raw {raw_ms:.1f} ms; "
        f"raw without percentile_cont {no_median_ms:.1f} ms"
    )
    print(
        f"  jit off for the session: raw month SQL {raw_ms:.1f} -> {raw_nojit_ms:.1f} ms; ours (endpoint) -> "
        f"{ours_nojit_ms:.1f} ms"
    )
    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '64MB'")
    raw_wm_ms = mean_sql_ms(RAW_SUMMARY_SQL, ["month", user.pk, start, end], n_summary)
    ours_wm_ms = mean_get_ms(client, month_url, n_summary)
    with connection.cursor() as cursor:
        cursor.execute("RESET work_mem")
    print(
        f"  work_mem 64MB instead of 4MB (no sort spill to disk): raw month SQL {raw_ms:.1f} -> {raw_wm_ms:.1f} ms; "
        f"ours (endpoint) -> {ours_wm_ms:.1f} ms"
    )
    report.update(
        whatif_ours_month_sql_ms=ours_sql_ms,
        whatif_raw_nojit_ms=raw_nojit_ms,
        whatif_ours_nojit_ms=ours_nojit_ms,
        whatif_raw_work_mem_64mb_ms=raw_wm_ms,
        whatif_ours_work_mem_64mb_ms=ours_wm_ms,
    )

    # Summary: a covering index for the (user, type, local_date) scans.
    before = mean_get_ms(client, month_url, n_summary)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX bench_reading_day_cover ON health_metrics_reading "
            "(user_id, metric_type_id, local_date) INCLUDE (value, secondary_value)"
        )
        build_s = time.perf_counter() - started
        cursor.execute("VACUUM ANALYZE health_metrics_reading")
    after = mean_get_ms(client, month_url, n_summary)
    raw_after = mean_sql_ms(RAW_SUMMARY_SQL, ["month", user.pk, start, end], n_summary)
    # Our SQL counts "id", which is not in the index: with count(*) it could stay index-only.
    count_star_sql = ours_sql.replace('COUNT("health_metrics_reading"."id")', "COUNT(*)")
    count_star_ms = mean_sql_ms(count_star_sql, None, n_summary) if count_star_sql != ours_sql else None
    print(
        f"  covering index (user, type, local_date) INCLUDE (value, secondary_value), built in {build_s:.1f} s: "
        f"month summary {before:.1f} -> {after:.1f} ms; raw SQL {raw_ms:.1f} -> {raw_after:.1f} ms;"
    )
    if count_star_ms is not None:
        print(f"    our month SQL with COUNT(*) for COUNT(id) on it: {ours_sql_ms:.1f} -> {count_star_ms:.1f} ms")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX bench_reading_day_cover")

    # Summary: the planner picks the single-column metric_type_id index (the FK's); without it?
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'health_metrics_reading' "
            "AND indexdef LIKE '%(metric_type_id)'"
        )
        type_index = cursor.fetchone()
    if type_index is not None:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX "{type_index[0]}"')
        no_type_index_ms = mean_get_ms(client, month_url, n_summary)
        raw_no_type_index_ms = mean_sql_ms(RAW_SUMMARY_SQL, ["month", user.pk, start, end], n_summary)
        with connection.cursor() as cursor:
            cursor.execute(type_index[1])
        print(
            f"  without the single-column index {type_index[0]}: month summary {before:.1f} -> "
            f"{no_type_index_ms:.1f} ms; raw SQL {raw_ms:.1f} -> {raw_no_type_index_ms:.1f} ms"
        )
        report.update(
            whatif_no_type_index_summary_ms=no_type_index_ms, whatif_no_type_index_raw_ms=raw_no_type_index_ms
        )

    # Summary: a month rollup table with exact medians, filled from the readings.
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            f"""CREATE TABLE {MONTH_ROLLUP_TABLE} AS
                SELECT user_id, metric_type_id, date_trunc('month', local_date)::date AS month,
                       count(*) AS count, min(value) AS min, max(value) AS max, avg(value) AS mean,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS median, sum(value) AS sum,
                       min(secondary_value) AS secondary_min, max(secondary_value) AS secondary_max,
                       avg(secondary_value) AS secondary_mean,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY secondary_value) AS secondary_median
                FROM health_metrics_reading GROUP BY 1, 2, 3"""
        )
        cursor.execute(f"ALTER TABLE {MONTH_ROLLUP_TABLE} ADD PRIMARY KEY (user_id, metric_type_id, month)")
        cursor.execute(f"ANALYZE {MONTH_ROLLUP_TABLE}")
        fill_s = time.perf_counter() - started
        cursor.execute(f"SELECT count(*) FROM {MONTH_ROLLUP_TABLE}")
        month_rows = cursor.fetchone()[0]
    one_month = (
        "SELECT count(*), min(value), max(value), avg(value), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY value), sum(value) FROM health_metrics_reading "
        "WHERE user_id = %s AND metric_type_id = 2 AND local_date >= %s AND local_date < %s"
    )
    recompute_ms = mean_sql_ms(one_month, [user.pk, date(YEAR, 6, 1), date(YEAR, 7, 1)], 5)
    rollup_url = f"/bench/rollup-summary/?metric_type=heart_rate&period=month&start_date={start}&end_date={end}"
    _, rollup_response = timed_get(client, rollup_url)
    _, raw_rows = timed_sql(RAW_SUMMARY_SQL, ["month", user.pk, start, end])
    check_buckets(rollup_response.json()["buckets"], raw_rows, "month rollup")
    times = alternate(
        n_summary,
        2,
        {
            "rollup": lambda: timed_get(client, rollup_url)[0],
            "raw": lambda: timed_sql(RAW_SUMMARY_SQL, ["month", user.pk, start, end])[0],
        },
    )
    rollup_ms = statistics.fmean(times["rollup"]) * 1000
    raw_ms2 = statistics.fmean(times["raw"]) * 1000
    print(
        f"  month rollup table ({month_rows} rows for all users, filled in {fill_s:.1f} s): month summary "
        f"{rollup_ms:.2f} ms vs raw {raw_ms2:.1f} ms -> summary_ratio would be {rollup_ms / raw_ms2:.3f}"
    )
    print(f"  keeping it current: recomputing one month of minute heart rate costs {recompute_ms:.1f} ms of SQL")
    report.update(
        whatif_raw_no_median_ms=no_median_ms,
        whatif_cover_index_summary_ms=after,
        whatif_cover_index_raw_ms=raw_after,
        whatif_cover_index_ours_sql_count_star_ms=count_star_ms,
        whatif_month_rollup_summary_ms=rollup_ms,
        whatif_month_rollup_summary_ratio=rollup_ms / raw_ms2,
        whatif_month_recompute_ms=recompute_ms,
    )


# --- Main ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace, report: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version(), current_setting('shared_buffers'), current_setting('work_mem'), "
            "current_setting('max_parallel_workers_per_gather'), current_setting('jit')"
        )
        version, shared_buffers, work_mem, parallel, jit = cursor.fetchone()
    print(f"PostgreSQL: {version.split(',')[0]}; shared_buffers {shared_buffers}, work_mem {work_mem}, ")
    print(f"  max_parallel_workers_per_gather {parallel}, jit {jit}; database {connection.settings_dict['NAME']}")
    print(f"Python {sys.version.split()[0]}, Django {django.get_version()}, {os.cpu_count()} CPUs\n")

    user, _ = load(report)
    with override_settings(ROOT_URLCONF=__name__):
        measure_list(user, args.requests, report)
        count_queries(user, report)
        measure_summaries(user, args.summary_runs, report)
        if args.explain:
            client = bearer_client(user)
            start, end = date(YEAR, 1, 1), date(YEAR, 12, 31)
            explain_endpoint(client, LIST_URL)
            explain_endpoint(client, summary_url("month", start, end))
            explain_endpoint(client, summary_url("day", start, end))
            explain_raw(user, start, end)
            profile_list(client)
            what_ifs(user, max(50, args.requests // 2), args.summary_runs, report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=positive, default=200, help="list requests per side (default 200)")
    parser.add_argument("--summary-runs", type=positive, default=10, help="summary runs per side (default 10)")
    parser.add_argument(
        "--explain",
        action="store_true",
        default=os.environ.get("BENCH_EXPLAIN", "") not in ("", "0"),
        help="also EXPLAIN ANALYZE, profile and run what-if experiments (or BENCH_EXPLAIN=1)",
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    # One request log line per request would bury the report; both sides lose it alike.
    logging.getLogger("django_structlog").setLevel(logging.WARNING)

    return run_in_throwaway_database(
        "bench_openvitals",
        lambda report: run(args, report),
        ["list_ratio", "summary_ratio", "queries_page_10", "queries_page_100"],
    )


if __name__ == "__main__":
    sys.exit(main())
