"""Sign-in sessions of our own replace SimpleJWT's token blacklist, which kept every refresh token in plaintext.

Each row of `token_blacklist_outstandingtoken` becomes a session of one refresh token kept as its id
and SHA-256 (a token spent by rotation stays spent, so replaying it still ends every session; one
logged out stays ended); then both blacklist tables are dropped, and the blacklist app's migration
records with them, so the plaintext is gone. The app is no longer installed, so its tables are read
with plain SQL, when they exist (a new database never had them).

Backwards, spent tokens go back into SpentRefreshToken; the plaintext cannot come back: with the
blacklist app installed again, `migrate` makes its tables anew (empty), and everyone signs in again.
"""

import hashlib
import uuid
from datetime import UTC

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.migrations.recorder import MigrationRecorder
from django.utils.dateparse import parse_datetime
from rest_framework_simplejwt.settings import api_settings

OUTSTANDING = "token_blacklist_outstandingtoken"
BLACKLISTED = "token_blacklist_blacklistedtoken"


def _aware(value):
    if isinstance(value, str):  # SQLite without a declared type
        value = parse_datetime(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def hash_blacklist_tokens(apps, schema_editor):
    connection = schema_editor.connection
    tables = set(connection.introspection.table_names())
    if OUTSTANDING not in tables:
        return
    AuthSession = apps.get_model("accounts", "AuthSession")
    IssuedRefreshToken = apps.get_model("accounts", "IssuedRefreshToken")
    SpentRefreshToken = apps.get_model("accounts", "SpentRefreshToken")
    spent = dict(SpentRefreshToken.objects.values_list("jti", "spent_at"))
    blacklisted = f"LEFT JOIN {BLACKLISTED} b ON b.token_id = o.id" if BLACKLISTED in tables else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.jti, o.token, o.user_id, o.created_at, o.expires_at, "
            f"{'b.blacklisted_at' if blacklisted else 'NULL'} FROM {OUTSTANDING} o {blacklisted} "
            f"WHERE o.user_id IS NOT NULL"  # a token of a deleted user can sign no one in
        )
        rows = cursor.fetchall()
    sessions, tokens = [], []
    for jti, token, user_id, created_at, expires_at, blacklisted_at in rows:
        expires_at = _aware(expires_at)
        created_at = _aware(created_at) or expires_at - api_settings.REFRESH_TOKEN_LIFETIME
        spent_at = spent.get(jti)
        # Rotation blacklisted the tokens it spent: those stay spent in a live session (a replay
        # is reuse); any other blacklisted token was logged out.
        logged_out = blacklisted_at is not None and spent_at is None
        session = AuthSession(
            user_id=user_id,
            created_at=created_at,
            expires_at=expires_at,
            ended_at=_aware(blacklisted_at) if logged_out else None,
            end_reason="logout" if logged_out else "",
        )
        sessions.append(session)
        tokens.append(
            IssuedRefreshToken(
                session=session,
                jti=jti,
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                created_at=created_at,
                expires_at=expires_at,
                spent_at=spent_at,
            )
        )
    AuthSession.objects.bulk_create(sessions, batch_size=1000)
    IssuedRefreshToken.objects.bulk_create(tokens, batch_size=1000)
    for table in (BLACKLISTED, OUTSTANDING):
        if table in tables:
            schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(table)}")
    MigrationRecorder(connection).migration_qs.filter(app="token_blacklist").delete()


def restore_spent_tokens(apps, schema_editor):
    IssuedRefreshToken = apps.get_model("accounts", "IssuedRefreshToken")
    SpentRefreshToken = apps.get_model("accounts", "SpentRefreshToken")
    SpentRefreshToken.objects.bulk_create(
        (
            SpentRefreshToken(jti=t.jti, user_id=t.session.user_id, spent_at=t.spent_at, expires_at=t.expires_at)
            for t in IssuedRefreshToken.objects.filter(spent_at__isnull=False).select_related("session")
        ),
        batch_size=1000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_spent_refresh_token'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuthSession',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('expires_at', models.DateTimeField()),
                ('ended_at', models.DateTimeField(blank=True, null=True)),
                ('end_reason', models.CharField(blank=True, choices=[('logout', 'Logged out'), ('logout_everywhere', 'Logged out everywhere'), ('password_changed', 'Password changed'), ('password_reset', 'Password reset'), ('token_reuse', 'A spent refresh token was reused')], max_length=32)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='auth_sessions', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'sign-in session',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='IssuedRefreshToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('jti', models.CharField(max_length=255, unique=True)),
                ('token_hash', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField()),
                ('spent_at', models.DateTimeField(blank=True, null=True)),
                ('session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='refresh_tokens', to='accounts.authsession')),
            ],
            options={
                'ordering': ['created_at'],
            },
        ),
        migrations.AddIndex(
            model_name='authsession',
            index=models.Index(fields=['expires_at'], name='authsession_expires_idx'),
        ),
        migrations.AddIndex(
            model_name='issuedrefreshtoken',
            index=models.Index(fields=['expires_at'], name='refreshtoken_expires_idx'),
        ),
        migrations.RunPython(hash_blacklist_tokens, restore_spent_tokens),
        migrations.DeleteModel(
            name='SpentRefreshToken',
        ),
        migrations.RemoveField(
            model_name='user',
            name='session_version',
        ),
    ]
