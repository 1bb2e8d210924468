"""The migration from SimpleJWT's token blacklist (refresh tokens in plaintext) to hashed sessions, and back."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import AuthSession, IssuedRefreshToken
from accounts.tests.plaintext import tables_holding

BEFORE = [("accounts", "0003_spent_refresh_token")]
AFTER = [("accounts", "0004_sessions_replace_token_blacklist")]
REFRESH = "/api/v1/auth/token/refresh/"

# SimpleJWT 5.5's token_blacklist tables as its migrations leave them (the app is no longer installed).
BLACKLIST_TABLES = """
CREATE TABLE token_blacklist_outstandingtoken (
    id bigserial PRIMARY KEY, jti varchar(255) NOT NULL UNIQUE, token text NOT NULL,
    created_at timestamptz NULL, expires_at timestamptz NOT NULL,
    user_id uuid NULL REFERENCES accounts_user (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE token_blacklist_blacklistedtoken (
    id bigserial PRIMARY KEY, blacklisted_at timestamptz NOT NULL,
    token_id bigint NOT NULL UNIQUE REFERENCES token_blacklist_outstandingtoken (id) DEFERRABLE INITIALLY DEFERRED
);
"""


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
    """Accounts before sessions, with the blacklist's tables; the latest schema again afterwards."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    apps = migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute(BLACKLIST_TABLES)
    recorder = MigrationRecorder(connection)
    recorder.record_applied("token_blacklist", "0013_alter_blacklistedtoken_options_and_more")
    yield apps
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS token_blacklist_blacklistedtoken, token_blacklist_outstandingtoken")
    recorder.migration_qs.filter(app="token_blacklist").delete()
    migrate(latest)


def legacy_refresh_token(user) -> str:
    """A refresh token as the app issued them before sessions: the session version, no session id."""
    token = RefreshToken()
    token["user_id"] = str(user.pk)
    token["sv"] = 0
    return str(token)


def outstanding(user, token: str, *, blacklisted_at: datetime | None = None) -> str:
    payload = RefreshToken(token, verify=False).payload
    expires_at = datetime.fromtimestamp(payload["exp"], tz=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO token_blacklist_outstandingtoken (jti, token, created_at, expires_at, user_id) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            [payload["jti"], token, timezone.now(), expires_at, user.pk if user else None],
        )
        (row_id,) = cursor.fetchone()
        if blacklisted_at:
            cursor.execute(
                "INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES (%s, %s)",
                [blacklisted_at, row_id],
            )
    return payload["jti"]


def test_blacklist_rows_become_hashed_sessions_and_the_plaintext_is_dropped(at_the_old_schema):
    apps = at_the_old_schema
    User = apps.get_model("accounts", "User")
    alice = User.objects.create(email="alice@example.com", password="!")
    live, logged_out, rotated = (legacy_refresh_token(alice) for _ in range(3))
    orphan = legacy_refresh_token(alice)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    live_jti = outstanding(alice, live)
    outstanding(alice, logged_out, blacklisted_at=an_hour_ago)
    rotated_jti = outstanding(alice, rotated, blacklisted_at=an_hour_ago)
    apps.get_model("accounts", "SpentRefreshToken").objects.create(
        jti=rotated_jti, user_id=alice.pk, spent_at=an_hour_ago, expires_at=timezone.now() + timedelta(days=1)
    )
    outstanding(None, orphan)  # its user was deleted: SimpleJWT kept the row with no user

    migrate(AFTER)

    tables = set(connection.introspection.table_names())
    assert not tables & {"token_blacklist_outstandingtoken", "token_blacklist_blacklistedtoken"}
    assert not MigrationRecorder(connection).migration_qs.filter(app="token_blacklist").exists()
    rows = {t.token_hash: t for t in IssuedRefreshToken.objects.select_related("session")}
    assert set(rows) == {hashlib.sha256(t.encode()).hexdigest() for t in (live, logged_out, rotated)}
    for token in (live, logged_out, rotated, orphan):
        assert tables_holding(token.rsplit(".", 1)[1]) == []
    by_token = {token: rows[hashlib.sha256(token.encode()).hexdigest()] for token in (live, logged_out, rotated)}
    assert by_token[live].spent_at is None
    assert by_token[live].session.ended_at is None
    assert (by_token[logged_out].session.ended_at, by_token[logged_out].session.end_reason) == (an_hour_ago, "logout")
    assert by_token[rotated].spent_at == an_hour_ago
    assert by_token[rotated].session.ended_at is None
    assert by_token[live].jti == live_jti

    # The apps' refresh tokens from before go on working, and the old rules hold for the others.
    client = APIClient()
    assert client.post(REFRESH, {"refresh": logged_out}).json()["errors"][0]["code"] == "session_ended"
    assert client.post(REFRESH, {"refresh": live}).status_code == 200
    replay = client.post(REFRESH, {"refresh": rotated})
    assert (replay.status_code, replay.json()["errors"][0]["code"]) == (401, "token_reused")
    assert not AuthSession.objects.live().exists()


def test_backwards_spent_tokens_return_to_the_spent_list(at_the_old_schema):
    apps = at_the_old_schema
    alice = apps.get_model("accounts", "User").objects.create(email="alice@example.com", password="!")
    rotated = legacy_refresh_token(alice)
    spent_at = timezone.now() - timedelta(minutes=5)
    rotated_jti = outstanding(alice, rotated, blacklisted_at=spent_at)
    apps.get_model("accounts", "SpentRefreshToken").objects.create(
        jti=rotated_jti, user_id=alice.pk, spent_at=spent_at, expires_at=timezone.now() + timedelta(days=1)
    )
    outstanding(alice, legacy_refresh_token(alice))
    migrate(AFTER)

    apps = migrate(BEFORE)

    spent = apps.get_model("accounts", "SpentRefreshToken").objects.values_list("jti", "user_id", "spent_at")
    assert list(spent) == [(rotated_jti, alice.pk, spent_at)]
    assert "accounts_issuedrefreshtoken" not in connection.introspection.table_names()
