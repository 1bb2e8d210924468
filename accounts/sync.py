"""Incremental sync for offline-first apps: what changed in a collection since a cursor.

Each tracked table (readings, targets, devices, ...) gets database triggers, installed by its app's
migration with `track(...)`, that write one `Change` row per created, updated or deleted row, whatever
wrote it: the ORM, a bulk insert with conflicts skipped, COPY, a cascade. On PostgreSQL they are
statement-level triggers with transition tables (one INSERT ... SELECT per statement, not a call per row);
on SQLite (the zero-setup `make run`) row-level ones.

Why the cursor is a transaction id and not a row id: ids are taken when a row is written, not when its
transaction commits, so a transaction that commits late can add change 100 after a client read past 101,
and that client would never see it. Each change carries its transaction's id (`pg_current_xact_id()`),
and the feed answers only changes of transactions older than the oldest one still running
(`pg_snapshot_xmin(pg_current_snapshot())`): those have all ended, so everything they wrote is visible
now and nothing can appear behind the cursor later. A position is (txid, id); the next cursor is the last
position answered, or the horizon itself once everything below it has been answered. The price: while a
transaction stays open, changes after it wait for it (seconds here; requests and tasks are short).

Without `since`, the feed starts with a snapshot: the ids of every object the user has now, in pages,
then changes from the moment the snapshot began (a change answered twice is harmless: apply it again).
Cursors are signed (tamper-proof, tied to the user and the collection) and expire a day before change
rows are purged (SYNC_CHANGE_RETENTION_DAYS); an expired cursor answers 410 and the app starts over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connection, models
from django.utils import timezone

from .models import Change, ChangeOp

SALT = "openvitals.sync.cursor"
MAX_ID = 2**63 - 1


class CursorError(Exception):
    """A cursor this feed cannot continue from; `code` says why (invalid or expired)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class Page:
    created: list[uuid.UUID] = field(default_factory=list)
    updated: list[uuid.UUID] = field(default_factory=list)
    deleted: list[uuid.UUID] = field(default_factory=list)
    next: str = ""
    has_more: bool = False


# --- Triggers, installed by each tracked table's migration -------------------------------------------


def track(table: str, collection: str, owner_column: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """Statements installing the change triggers on `table`, and removing them, for PostgreSQL and SQLite:
    (postgresql, its reverse, sqlite, its reverse). Migrations run them through `install(...)`."""
    name = f"ov_changes_{table}"
    postgresql = [
        f"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                INSERT INTO accounts_change (user_id, collection, object_id, op, txid, changed_at)
                SELECT {owner_column}, '{collection}', id, 'delete', pg_current_xact_id()::text::bigint,
                       clock_timestamp()
                FROM old_rows;
            ELSE
                INSERT INTO accounts_change (user_id, collection, object_id, op, txid, changed_at)
                SELECT {owner_column}, '{collection}', id, lower(TG_OP), pg_current_xact_id()::text::bigint,
                       clock_timestamp()
                FROM new_rows;
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER {name}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {name}();
        CREATE TRIGGER {name}_update AFTER UPDATE ON {table} REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {name}();
        CREATE TRIGGER {name}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {name}();
        """
    ]
    postgresql_reverse = [
        *(f"DROP TRIGGER IF EXISTS {name}_{op} ON {table}" for op in ("insert", "update", "delete")),
        f"DROP FUNCTION IF EXISTS {name}()",
    ]
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    sqlite = [
        f"""CREATE TRIGGER {name}_{op} AFTER {op.upper()} ON {table} BEGIN
            INSERT INTO accounts_change (user_id, collection, object_id, op, txid, changed_at)
            VALUES ({row}.{owner_column}, '{collection}', {row}.id, '{op}', 0, {now});
        END"""
        for op, row in (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))
    ]
    sqlite_reverse = [f"DROP TRIGGER IF EXISTS {name}_{op}" for op in ("insert", "update", "delete")]
    return postgresql, postgresql_reverse, sqlite, sqlite_reverse


def install(table: str, collection: str, owner_column: str):  # noqa: ANN201 - a RunPython function
    def forwards(apps: Any, schema_editor: Any) -> None:
        postgresql, _, sqlite, _ = track(table, collection, owner_column)
        _execute(schema_editor, postgresql if schema_editor.connection.vendor == "postgresql" else sqlite)

    def backwards(apps: Any, schema_editor: Any) -> None:
        _, postgresql, _, sqlite = track(table, collection, owner_column)
        _execute(schema_editor, postgresql if schema_editor.connection.vendor == "postgresql" else sqlite)

    return forwards, backwards


def _execute(schema_editor: Any, statements: list[str]) -> None:
    for statement in statements:
        schema_editor.execute(statement)


# --- Reading the feed ------------------------------------------------------------------------------------


def changes_since(
    *, user_id: uuid.UUID, collection: str, objects: models.QuerySet, since: str | None, limit: int | None = None
) -> Page:
    """One page of the feed of `collection` for `user_id`: `objects` are the user's current ones (snapshot)."""
    limit = limit or settings.SYNC_PAGE_SIZE
    if not since:
        start = _snapshot_start()
        return _snapshot(user_id, collection, objects, start=start, after=None, limit=limit)
    cursor = _decode(since, user_id=user_id, collection=collection)
    if cursor["k"] == "s":
        return _snapshot(user_id, collection, objects, start=(cursor["t"], cursor["i"]), after=cursor["o"], limit=limit)
    return _feed(user_id, collection, position=(cursor["t"], cursor["i"]), limit=limit)


def _snapshot(
    user_id: uuid.UUID,
    collection: str,
    objects: models.QuerySet,
    *,
    start: tuple[int, int],
    after: str | None,
    limit: int,
) -> Page:
    rows = objects.order_by("pk")
    if after:
        rows = rows.filter(pk__gt=after)
    ids = list(rows.values_list("pk", flat=True)[: limit + 1])
    page = Page(created=ids[:limit])
    if len(ids) > limit:
        page.has_more = True
        page.next = _encode({"k": "s", "t": start[0], "i": start[1], "o": str(ids[limit - 1])}, user_id, collection)
    else:  # the snapshot is whole: from here on, the changes made since it began
        page.next = _encode({"k": "f", "t": start[0], "i": start[1]}, user_id, collection)
    return page


def _feed(user_id: uuid.UUID, collection: str, *, position: tuple[int, int], limit: int) -> Page:
    horizon = _horizon()
    rows = list(
        Change.objects.filter(user_id=user_id, collection=collection, txid__lt=horizon)
        .filter(models.Q(txid__gt=position[0]) | models.Q(txid=position[0], id__gt=position[1]))
        .order_by("txid", "id")
        .values_list("txid", "id", "object_id", "op")[: limit + 1]
    )
    page = Page(has_more=len(rows) > limit)
    rows = rows[:limit]
    first: dict[uuid.UUID, str] = {}
    last: dict[uuid.UUID, str] = {}
    for _, _, object_id, op in rows:
        first.setdefault(object_id, op)
        last[object_id] = op
    for object_id, op in last.items():
        if op == ChangeOp.DELETE:
            page.deleted.append(object_id)
        elif first[object_id] == ChangeOp.INSERT:
            page.created.append(object_id)
        else:
            page.updated.append(object_id)
    if page.has_more or connection.vendor != "postgresql":
        position = (rows[-1][0], rows[-1][1]) if rows else position
    else:  # everything below the horizon is answered
        position = max(position, (horizon - 1, MAX_ID))
    page.next = _encode({"k": "f", "t": position[0], "i": position[1]}, user_id, collection)
    return page


def _horizon() -> int:
    """The oldest transaction id still running: every change of an older transaction is visible now.

    SQLite has one writer at a time, so its ids are in commit order and every txid is 0: all are below 1.
    """
    if connection.vendor != "postgresql":
        return 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return cursor.fetchone()[0]


def _snapshot_start() -> tuple[int, int]:
    """The feed position a snapshot taken now continues from."""
    if connection.vendor != "postgresql":
        return (0, Change.objects.aggregate(last=models.Max("id"))["last"] or 0)
    return (_horizon() - 1, MAX_ID)


def _encode(position: dict[str, Any], user_id: uuid.UUID, collection: str) -> str:
    payload = {**position, "u": str(user_id), "c": collection, "at": int(timezone.now().timestamp())}
    return signing.dumps(payload, salt=SALT, compress=True)


def _decode(cursor: str, *, user_id: uuid.UUID, collection: str) -> dict[str, Any]:
    try:
        payload = signing.loads(cursor, salt=SALT)
    except signing.BadSignature:
        raise CursorError("invalid", "Not a cursor this feed gave out; start without `since`.") from None
    if not isinstance(payload, dict) or payload.get("u") != str(user_id) or payload.get("c") != collection:
        raise CursorError("invalid", "This cursor belongs to another feed; start without `since`.")
    age = timezone.now().timestamp() - payload.get("at", 0)
    if age > timedelta(days=settings.SYNC_CHANGE_RETENTION_DAYS - 1).total_seconds():
        raise CursorError("cursor_expired", "This cursor is older than the change history kept; start without `since`.")
    return payload


# --- Retention -------------------------------------------------------------------------------------------


def purge_old_changes(*, batch_size: int = 10_000) -> int:
    """Delete change rows older than SYNC_CHANGE_RETENTION_DAYS, in batches; answers how many."""
    cutoff = timezone.now() - timedelta(days=settings.SYNC_CHANGE_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(Change.objects.filter(changed_at__lt=cutoff).values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += Change.objects.filter(id__in=ids).delete()[0]
