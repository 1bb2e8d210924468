"""Notifications benchmark: the fan-out of one event to 1,000 people against COPY, and the inbox against a bare view.

Run with `make bench` (PostgreSQL and Redis from the environment, settings config.settings.test).
Everything happens in a throwaway PostgreSQL database created here and dropped at the end,
even on failure; the developer's own databases are never touched.

What it does:
  1. makes a patient and 999 clinicians, each with an active grant of the `metrics` scope, and loads
     100,000 background notifications (with one email delivery each) for them with COPY, then
     VACUUM ANALYZE, so the tables and their indexes are not empty;
  2. fan-out: one `notify("health_alert_critical", patient=..., scope="metrics", dedupe_key=...)`, as
     health_metrics/events.py calls it, in a transaction, commit included: the grant lookup, 1,000
     notifications and a delivery per channel of the kind (email, push, SMS: 3,000), against raw
     psycopg COPY of the same rows (every column the app writes) on a separate connection
     in one transaction, commit included. The on-commit hand-off to the workers is counted and left
     out (a worker sends; that is delivery, not fan-out). 1 warm-up, then --runs runs each,
     alternated, a fresh dedupe key per run; medians.
     fanout_ratio = raw_copy_s / ours_s (1.0 = as fast as raw COPY);
  3. inbox: GET /api/v1/notifications/ (first page, 20) as a person with 10,000 notifications, with a
     real access token (Django test Client) against a bare Django view doing the same query
     (`Notification.objects.filter(recipient=user).order_by("-created_at", "-id").values(...)[:20]`,
     JsonResponse) after the same JWT authentication; and, for reference, the same bare view with no
     authentication at all. 20 warm-up requests each, then --requests each, alternated.
     inbox_ratio = ours_rps / bare_rps; inbox_queries = statements in one inbox request.
Nothing passes or fails on time. The last line of stdout is one JSON object with the figures.

`--explain` (or BENCH_EXPLAIN=1) adds a cProfile of one fan-out and of 200 inbox requests, and
EXPLAIN (ANALYZE, BUFFERS) of every statement of the inbox request.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import sys
import time
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
from django.db import connection, transaction  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.exceptions import AuthenticationFailed  # noqa: E402
from rest_framework.pagination import CursorPagination  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402
from rest_framework_simplejwt.authentication import JWTAuthentication  # noqa: E402

import notifications.services as services  # noqa: E402
from accounts.models import CareTeamGrant, Role, Scope, User  # noqa: E402
from accounts.tokens import issue_tokens  # noqa: E402
from config.startup import freeze_startup_objects  # noqa: E402
from notifications import channels, kinds  # noqa: E402
from notifications.api.serializers import NotificationSerializer  # noqa: E402
from notifications.api.views import NotificationViewSet  # noqa: E402
from notifications.models import Delivery, Notification  # noqa: E402

RECIPIENTS = 1_000  # the patient and 999 clinicians
BACKGROUND = 100_000
INBOX = 10_000
KIND = "health_alert_critical"
PAYLOAD = {"metric": "Blood glucose", "message": "Blood glucose 312 mg/dL, above 250.", "alert_id": "bench"}
INBOX_URL = "/api/v1/notifications/"
BARE_URL = "/bench/bare-inbox/"
PLAIN_URL = "/bench/plain-inbox/"
FIELDS = ("id", "kind", "severity", "title", "body", "data", "patient_id", "read_at", "created_at")
NOTIFICATION_COLUMNS = (
    "id",
    "recipient_id",
    "patient_id",
    "kind",
    "severity",
    "title",
    "body",
    "data",
    "dedupe_key",
    "created_at",
    "read_at",
)
DELIVERY_COLUMNS = (
    "notification_id",
    "channel",
    "status",
    "reason",
    "address",
    "attempts",
    "last_error",
    "next_attempt_at",
    "claimed_at",
    "sent_at",
    "created_at",
)
N_TABLE, D_TABLE = Notification._meta.db_table, Delivery._meta.db_table
COPY_NOTIFICATIONS = f"COPY {N_TABLE} ({', '.join(NOTIFICATION_COLUMNS)}) FROM STDIN"
COPY_DELIVERIES = f"COPY {D_TABLE} ({', '.join(DELIVERY_COLUMNS)}) FROM STDIN"


# --- The bare baselines (mounted by this module's URLconf) ------------------------------------

INBOX_OWNER: dict[str, User] = {}  # whose inbox the unauthenticated reference view answers


def _rows(user: User) -> list[dict]:
    return list(
        Notification.objects.filter(recipient=user).order_by("-created_at", "-id").values(*FIELDS)[:20],
    )


def bare_inbox(request):  # noqa: ANN001, ANN201
    """The same page of the same rows, after the same JWT authentication; no DRF view, serializer, paging, count."""
    try:
        found = JWTAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        found = None
    if found is None:
        return JsonResponse({"detail": "not authenticated"}, status=401)
    return JsonResponse(_rows(found[0]), safe=False)


def plain_inbox(request):  # noqa: ANN001, ANN201
    """For reference: the query and JSON alone, for a fixed person (no authentication at all)."""
    return JsonResponse(_rows(INBOX_OWNER["user"]), safe=False)


class NoCountPagination(CursorPagination):
    """What-if: keyset pagination on the inbox's own ordering; no COUNT(*)."""

    ordering = ("-created_at", "-id")
    page_size = 20


class NoCountInbox(NotificationViewSet):
    pagination_class = NoCountPagination


class SerializedInbox(APIView):
    """What-if: the bare view through DRF: the same authentication, model instances, the real serializer."""

    def get(self, request):  # noqa: ANN001, ANN201
        rows = Notification.objects.filter(recipient=request.user).order_by("-created_at", "-id")[:20]
        return Response(NotificationSerializer(rows, many=True).data)


urlpatterns = [
    path("bench/bare-inbox/", bare_inbox),
    path("bench/plain-inbox/", plain_inbox),
    path("bench/no-count-inbox/", NoCountInbox.as_view({"get": "list"})),
    path("bench/serialized-inbox/", SerializedInbox.as_view()),
    path("", include("config.urls")),
]


# --- Data ---------------------------------------------------------------------------------------


def raw_connection() -> psycopg.Connection:
    s = connection.settings_dict
    params = {"dbname": s["NAME"], "user": s["USER"], "host": s["HOST"] or None, "port": s["PORT"] or None}
    if s.get("PASSWORD"):
        params["password"] = s["PASSWORD"]
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None})


def make_people() -> tuple[User, list[User]]:
    """A patient and 999 clinicians, each holding an active grant of the metrics scope."""
    started = time.perf_counter()
    patient = User.objects.create_user("bench-patient@example.com", "bench-password-123")
    clinicians = [
        User.objects.create_user(f"bench-dr-{n}@example.com", "bench-password-123", role=Role.CLINICIAN)
        for n in range(RECIPIENTS - 1)
    ]
    CareTeamGrant.objects.bulk_create(
        CareTeamGrant(patient=patient, clinician=clinician, scopes=[Scope.METRICS]) for clinician in clinicians
    )
    print(
        f"People: 1 patient and {len(clinicians)} clinicians with active `metrics` grants "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return patient, clinicians


def notification_row(recipient_id: uuid.UUID, patient_id: uuid.UUID | None, at: datetime, key: str) -> tuple:
    spec = kinds.get(KIND)
    return (
        uuid.uuid4(),
        recipient_id,
        patient_id,
        KIND,
        spec.severity,
        spec.render(spec.title, PAYLOAD)[:200],
        spec.render(spec.body, PAYLOAD),
        json.dumps({"alert_id": PAYLOAD["alert_id"]}),
        key,
        at,
        None,
    )


def channel_shape() -> list[tuple[str, str, str]]:
    """(channel, status, reason) of what notify() writes per recipient of the kind: each channel but in-app,
    queued where a backend is registered, not_sent (channel_unavailable) where none is (nobody mutes here)."""
    return [
        (channel, "queued", "") if channel in channels.BACKENDS else (channel, "not_sent", "channel_unavailable")
        for channel in kinds.get(KIND).channels
        if channel != "in_app"
    ]


def delivery_rows(notification_id: uuid.UUID, at: datetime) -> list[tuple]:
    return [
        (notification_id, channel, status, reason, "", 0, "", at, None, None, at)
        for channel, status, reason in channel_shape()
    ]


def copy_in(pg: psycopg.Connection, notifications: list[tuple], deliveries: list[tuple]) -> None:
    with pg.cursor() as cursor:
        with cursor.copy(COPY_NOTIFICATIONS) as copy:
            for row in notifications:
                copy.write_row(row)
        with cursor.copy(COPY_DELIVERIES) as copy:
            for row in deliveries:
                copy.write_row(row)
    pg.commit()


def load_background(pg: psycopg.Connection, people: list[User], inbox_owner: User) -> None:
    """100,000 notifications spread over `people` (one sent email each) and 10,000 in `inbox_owner`'s inbox."""
    started = time.perf_counter()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    notifications, deliveries = [], []
    for n in range(BACKGROUND):
        at = base + timedelta(seconds=n * 60)
        row = notification_row(people[n % len(people)].pk, people[0].pk, at, "")
        notifications.append(row)
        deliveries.append((row[0], "email", "sent", "", "", 1, "", at, at, at, at))
    for n in range(INBOX):  # one a minute, some read
        at = base + timedelta(seconds=n * 60 + 30)
        row = list(notification_row(inbox_owner.pk, people[0].pk, at, ""))
        row[-1] = at + timedelta(hours=1) if n % 3 else None
        notifications.append(tuple(row))
    copy_in(pg, notifications, deliveries)
    pg.autocommit = True
    pg.execute(f"VACUUM ANALYZE {N_TABLE}")
    pg.execute(f"VACUUM ANALYZE {D_TABLE}")
    pg.autocommit = False
    print(
        f"Background: {BACKGROUND:,} notifications (+ one delivery each) and an inbox of {INBOX:,} COPYed and "
        f"VACUUM ANALYZEd in {time.perf_counter() - started:.1f} s (all indexes and constraints in place)"
    )


# --- Fan-out ------------------------------------------------------------------------------------


class HandOff:
    """Stands in for services.enqueue while timing: counts the delivery ids handed to the workers."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, delivery_ids: list[int]) -> None:
        self.ids.extend(delivery_ids)


def one_ours(patient: User, key: str) -> tuple[float, int, int]:
    handoff = HandOff()
    original, services.enqueue = services.enqueue, handoff
    try:
        started = time.perf_counter()
        with transaction.atomic():
            told = services.notify(KIND, patient=patient, scope=Scope.METRICS, payload=PAYLOAD, dedupe_key=key)
        elapsed = time.perf_counter() - started
    finally:
        services.enqueue = original
    if len(told) != RECIPIENTS:
        raise RuntimeError(f"notify told {len(told)} people, expected {RECIPIENTS}")
    deliveries = Delivery.objects.filter(notification__dedupe_key=key).count()
    shape = channel_shape()
    queued = sum(1 for _, status, _ in shape if status == "queued")
    if deliveries != len(shape) * RECIPIENTS or len(handoff.ids) != queued * RECIPIENTS:
        raise RuntimeError(f"notify wrote {deliveries} deliveries and handed on {len(handoff.ids)}")
    return elapsed, deliveries, len(handoff.ids)


def raw_rows(patient: User, clinicians: list[User], key: str) -> tuple[list[tuple], list[tuple]]:
    now = timezone.now()
    notifications = [notification_row(person.pk, patient.pk, now, key) for person in [patient, *clinicians]]
    deliveries = [row for n in notifications for row in delivery_rows(n[0], now)]
    return notifications, deliveries


def one_raw(pg: psycopg.Connection, patient: User, clinicians: list[User], key: str) -> float:
    notifications, deliveries = raw_rows(patient, clinicians, key)  # built before the clock starts
    started = time.perf_counter()
    copy_in(pg, notifications, deliveries)
    elapsed = time.perf_counter() - started
    stored = Delivery.objects.filter(notification__dedupe_key=key).count()
    if stored != len(deliveries):
        raise RuntimeError(f"raw COPY stored {stored} deliveries, expected {len(deliveries)}")
    return elapsed


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    values = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON CONFLICT DO NOTHING"


INSERT_NOTIFICATIONS = insert_sql(N_TABLE, NOTIFICATION_COLUMNS)
INSERT_DELIVERIES = insert_sql(D_TABLE, DELIVERY_COLUMNS)


def one_executemany(pg: psycopg.Connection, patient: User, clinicians: list[User], key: str) -> float:
    """The same rows through psycopg's executemany (pipelined) INSERT ... ON CONFLICT DO NOTHING, as notify's
    doubled-event guard needs: the bare version of what the ORM sends, where COPY is the bare bulk load."""
    notifications, deliveries = raw_rows(patient, clinicians, key)
    started = time.perf_counter()
    with pg.cursor() as cursor:
        cursor.executemany(INSERT_NOTIFICATIONS, notifications)
        cursor.executemany(INSERT_DELIVERIES, deliveries)
    pg.commit()
    elapsed = time.perf_counter() - started
    stored = Delivery.objects.filter(notification__dedupe_key=key).count()
    if stored != len(deliveries):
        raise RuntimeError(f"raw executemany stored {stored} deliveries, expected {len(deliveries)}")
    return elapsed


def measure_fanout(pg: psycopg.Connection, patient: User, clinicians: list[User], runs: int, report: dict) -> None:
    sides = {
        "ours": lambda tag: one_ours(patient, tag)[0],
        "copy": lambda tag: one_raw(pg, patient, clinicians, tag),
        "executemany": lambda tag: one_executemany(pg, patient, clinicians, tag),
    }
    err("Fan-out: warming up...")
    for name, side in sides.items():
        side(f"warm-{name}")
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for i in range(runs):
        for name in names[i % len(names) :] + names[: i % len(names)]:  # who goes first rotates
            times[name].append(sides[name](f"{name}-{i}"))
        err(f"  fan-out run {i + 1}/{runs}: " + ", ".join(f"{n} {t[-1] * 1000:.1f} ms" for n, t in times.items()))
    median = {name: statistics.median(t) for name, t in times.items()}
    ours_s, raw_s, many_s = median["ours"], median["copy"], median["executemany"]
    print(f"\nFan-out: one notify() of a critical alert to {RECIPIENTS:,} people vs raw inserts of the same rows")
    per = len(channel_shape())
    print(f"  ({RECIPIENTS:,} notifications + {per * RECIPIENTS:,} deliveries, one transaction, commit included)")
    print(f"  {runs} runs each after a warm-up, rotated; medians")
    for name, label in (("ours", "ours       "), ("copy", "raw COPY   "), ("executemany", "executemany")):
        runs_ms = ", ".join(f"{t * 1000:.0f}" for t in times[name])
        print(f"  {label} median {median[name] * 1000:8.1f} ms  (runs: {runs_ms})")
    print(f"  fanout_ratio = raw_copy_s / ours_s = {raw_s / ours_s:.3f}")
    print(f"  against executemany INSERT ... ON CONFLICT DO NOTHING: {many_s / ours_s:.3f}")
    report.update(
        fanout_ratio=raw_s / ours_s,
        fanout_ours_ms=ours_s * 1000,
        fanout_raw_copy_ms=raw_s * 1000,
        fanout_executemany_ms=many_s * 1000,
        fanout_ratio_vs_executemany=many_s / ours_s,
        fanout_rows=RECIPIENTS + per * RECIPIENTS,
    )


def fanout_queries(patient: User, report: dict) -> None:
    handoff = HandOff()
    original, services.enqueue = services.enqueue, handoff
    try:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as ctx, transaction.atomic():
            services.notify(KIND, patient=patient, scope=Scope.METRICS, payload=PAYLOAD, dedupe_key="queries")
        total = time.perf_counter() - started
    finally:
        services.enqueue = original
    sql = sum(float(query["time"]) for query in ctx.captured_queries)
    report.update(fanout_queries=len(ctx.captured_queries), fanout_sql_ms=sql * 1000, fanout_total_ms=total * 1000)
    print(
        f"\nOne more fan-out, its statements timed by CaptureQueriesContext: {len(ctx.captured_queries)} statements, "
        f"{sql * 1000:.0f} ms in the database driver of {total * 1000:.0f} ms (the rest is Python: model instances, "
        "the SQL compiler, parameter adaptation)"
    )
    for query in ctx.captured_queries:
        print(f"    - {float(query['time']) * 1000:7.1f} ms  {shorten(query['sql'])}")


# --- Inbox --------------------------------------------------------------------------------------


def timed_get(client: Client, url: str) -> tuple[float, object]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:500]!r}")
    return elapsed, response


def alternate(n: int, warmup: int, runners: dict) -> dict[str, list[float]]:
    """Run each callable n times after `warmup` untimed rounds, rotating which goes first every round."""
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            times[name].append(runners[name]())
    return times


def measure_inbox(owner: User, n: int, report: dict) -> Client:
    client = Client(headers={"authorization": f"Bearer {issue_tokens(owner)['access']}"})
    _, ours = timed_get(client, INBOX_URL)
    _, bare = timed_get(client, BARE_URL)
    _, plain = timed_get(client, PLAIN_URL)
    ids = [row["id"] for row in ours.json()["results"]]
    if ids != [row["id"] for row in bare.json()] or ids != [row["id"] for row in plain.json()] or len(ids) != 20:
        raise RuntimeError("the inbox and the bare views disagree on the newest 20 notifications")
    if ours.json()["count"] != INBOX:
        raise RuntimeError(f"the inbox counts {ours.json()['count']}, expected {INBOX}")
    request_log = logging.getLogger("django_structlog")
    level = request_log.level
    request_log.setLevel(logging.ERROR)  # the two 401s below are expected: no warning lines on stdout
    try:
        if Client().get(INBOX_URL).status_code != 401 or Client().get(BARE_URL).status_code != 401:
            raise RuntimeError("an inbox answered without a token")
    finally:
        request_log.setLevel(level)

    times = alternate(
        n,
        20,
        {
            "ours": lambda: timed_get(client, INBOX_URL)[0],
            "bare": lambda: timed_get(client, BARE_URL)[0],
            "plain": lambda: timed_get(client, PLAIN_URL)[0],
        },
    )
    rps = {name: n / sum(seconds) for name, seconds in times.items()}
    with CaptureQueriesContext(connection) as ctx:
        timed_get(client, INBOX_URL)
    inbox_sql = [q["sql"] for q in ctx.captured_queries]
    with CaptureQueriesContext(connection) as ctx:
        timed_get(client, BARE_URL)
    bare_queries = len(ctx.captured_queries)

    print(f"\nInbox: GET {INBOX_URL} (20 of {INBOX:,}) vs a bare view, {n} requests each, rotated, after 20 warm-up")
    for name, label in (("ours", "ours "), ("bare", "bare "), ("plain", "plain")):
        s = times[name]
        print(
            f"  {label} {rps[name]:8.1f} req/s  (mean {statistics.fmean(s) * 1000:.2f} ms, "
            f"median {statistics.median(s) * 1000:.2f} ms)"
        )
    print("  bare: the same JWT authentication, the query, JsonResponse; plain: the query and JsonResponse alone")
    print(f"  inbox_ratio = ours_rps / bare_rps = {rps['ours'] / rps['bare']:.3f}")
    print(f"  against the plain view (no authentication): {rps['ours'] / rps['plain']:.3f}")
    print(f"  statements in one inbox request: {len(inbox_sql)} (bare view: {bare_queries})")
    for sql in inbox_sql:
        print(f"    - {shorten(sql)}")
    report.update(
        inbox_ratio=rps["ours"] / rps["bare"],
        inbox_queries=len(inbox_sql),
        inbox_ms=statistics.fmean(times["ours"]) * 1000,
        inbox_bare_ms=statistics.fmean(times["bare"]) * 1000,
        inbox_plain_ms=statistics.fmean(times["plain"]) * 1000,
        inbox_ratio_vs_plain=rps["ours"] / rps["plain"],
        inbox_bare_queries=bare_queries,
        inbox_bytes=len(ours.content),
        inbox_bare_bytes=len(bare.content),
    )
    return client


def shorten(sql: str, width: int = 150) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= width else sql[: width - 3] + "..."


# --- --explain ----------------------------------------------------------------------------------


def profile(label: str, run, rows: int = 25) -> None:  # noqa: ANN001
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(rows)
    print(f"\ncProfile: {label} (cumulative, top {rows})")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:8000])


def explain_inbox(client: Client) -> None:
    with CaptureQueriesContext(connection) as ctx:
        timed_get(client, INBOX_URL)
    for query in ctx.captured_queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = "\n      ".join(row[0] for row in cursor.fetchall())
        print(f"\n  {shorten(sql)}\n      {plan}")


def what_ifs(patient: User) -> dict[str, float]:
    """Where notify's time goes, by taking pieces away (nothing here changes the app)."""
    recipients = [patient, *User.objects.filter(patient_grants__patient=patient)]
    spec = kinds.get(KIND)
    runs = 5

    def timed(run):  # noqa: ANN001, ANN202
        def once() -> float:
            started = time.perf_counter()
            with transaction.atomic():
                run()
            return time.perf_counter() - started

        return once

    n = [0]

    def key() -> str:
        n[0] += 1
        return f"whatif-{n[0]}"

    def notify_without_key() -> None:  # no dedupe pre-select, no ON CONFLICT, no re-select of what went in
        services.notify(KIND, patient=patient, scope=Scope.METRICS, payload=PAYLOAD)

    def notify_listed() -> None:  # the recipients handed in (already loaded): no grant query
        services.notify(KIND, recipients=recipients, about=patient, payload=PAYLOAD, dedupe_key=key())

    def orm_floor(ignore_conflicts: bool = False) -> None:  # the ORM alone: bulk_create of the same instances
        now, dedupe = timezone.now(), key()
        rows = [
            Notification(
                recipient_id=person.pk,
                patient=patient,
                kind=KIND,
                severity=spec.severity,
                title=spec.render(spec.title, PAYLOAD),
                body=spec.render(spec.body, PAYLOAD),
                data={"alert_id": "bench"},
                dedupe_key=dedupe,
            )
            for person in recipients
        ]
        Notification.objects.bulk_create(rows, ignore_conflicts=ignore_conflicts)
        Delivery.objects.bulk_create(
            [
                Delivery(notification=row, channel=channel, status=status, reason=reason, next_attempt_at=now)
                for row in rows
                for channel, status, reason in channel_shape()
            ],
            ignore_conflicts=ignore_conflicts,
        )

    def ours() -> None:
        services.notify(KIND, patient=patient, scope=Scope.METRICS, payload=PAYLOAD, dedupe_key=key())

    handoff = HandOff()  # in place until after every commit: the on-commit hand-off looks `enqueue` up then
    original, services.enqueue = services.enqueue, handoff
    try:
        samples = alternate(
            runs,
            1,
            {
                "notify, as measured": timed(ours),
                "notify without a dedupe key": timed(notify_without_key),
                "notify to a list of loaded users": timed(notify_listed),
                "ORM bulk_create of the same rows": timed(orm_floor),
                "  the same, ignore_conflicts=True": timed(lambda: orm_floor(ignore_conflicts=True)),
            },
        )
    finally:
        services.enqueue = original
    figures = {label: statistics.median(seconds) for label, seconds in samples.items()}
    print(
        f"\nWhat-ifs for the fan-out to {len(recipients):,} people (1 warm-up, {runs} runs each, rotated, medians, "
        "commit included)"
    )
    for label, seconds in figures.items():
        print(f"  {label:40s} {seconds * 1000:8.1f} ms")
    return figures


def inbox_what_ifs(client: Client, report: dict, n: int = 200) -> None:
    """The inbox without its COUNT(*), and the bare query through DRF's serializer; rotated with ours and bare."""
    urls = {
        "ours": INBOX_URL,
        "ours without COUNT (cursor pages)": "/bench/no-count-inbox/",
        "bare through NotificationSerializer": "/bench/serialized-inbox/",
        "bare": BARE_URL,
    }
    times = alternate(n, 20, {label: (lambda url=url: timed_get(client, url)[0]) for label, url in urls.items()})
    print(f"\nWhat-ifs for the inbox ({n} requests each after 20 warm-up, rotated; means)")
    for label, seconds in times.items():
        mean = statistics.fmean(seconds) * 1000
        print(f"  {label:40s} {mean:6.2f} ms")
        report["whatif_inbox_" + "_".join(label.lower().replace("(", "").replace(")", "").split()) + "_ms"] = mean


def explain(patient: User, client: Client, report: dict) -> None:
    n = [0]

    def fan_out() -> None:
        n[0] += 1
        one_ours(patient, f"profile-{n[0]}")

    for label, seconds in what_ifs(patient).items():
        report["whatif_fanout_" + "_".join(label.replace(",", "").replace("=", " ").split()).lower() + "_ms"] = (
            seconds * 1000
        )
    profile("one fan-out to 1,000", fan_out, 40)
    inbox_what_ifs(client, report)
    profile("200 inbox requests", lambda: [timed_get(client, INBOX_URL) for _ in range(200)], 40)
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the inbox request's statements")
    explain_inbox(client)


# --- Main ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace, report: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_setting('shared_buffers'), current_setting('synchronous_commit')")
        version, shared_buffers, sync_commit = cursor.fetchone()
    print(
        f"PostgreSQL: {version.split(',')[0]}; shared_buffers {shared_buffers}, synchronous_commit {sync_commit}; "
        f"database {connection.settings_dict['NAME']}"
    )
    print(f"Python {sys.version.split()[0]}, Django {django.get_version()}, {os.cpu_count()} CPUs")
    frozen = freeze_startup_objects()
    print(f"{frozen:,} objects of the loaded app frozen out of garbage collection, as a worker does once ready\n")

    patient, clinicians = make_people()
    inbox_owner = User.objects.create_user("bench-inbox@example.com", "bench-password-123")
    INBOX_OWNER["user"] = inbox_owner
    with override_settings(ROOT_URLCONF=__name__), raw_connection() as pg:
        load_background(pg, [patient, *clinicians], inbox_owner)
        measure_fanout(pg, patient, clinicians, args.runs, report)
        fanout_queries(patient, report)
        client = measure_inbox(inbox_owner, args.requests, report)
        if args.explain:
            explain(patient, client, report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=positive, default=7, help="fan-out runs per side (default 7)")
    parser.add_argument("--requests", type=positive, default=300, help="inbox requests per view (default 300)")
    parser.add_argument(
        "--explain",
        action="store_true",
        default=os.environ.get("BENCH_EXPLAIN", "") not in ("", "0"),
        help="also profile and EXPLAIN ANALYZE (or BENCH_EXPLAIN=1)",
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    logging.getLogger("django_structlog").setLevel(logging.WARNING)
    logging.getLogger("celery").setLevel(logging.WARNING)

    return run_in_throwaway_database(
        "bench_notifications", lambda report: run(args, report), ["fanout_ratio", "inbox_ratio", "inbox_queries"]
    )


if __name__ == "__main__":
    sys.exit(main())
