"""Settings as deployments and newcomers meet them: production checks, zero-setup, schema, migrations.

Each deployment shape runs `manage.py` in a subprocess with a clean environment, because the
settings module reads the environment once, at import.
"""

import os
import sqlite3
import subprocess
import sys

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

MANAGE = str(settings.BASE_DIR / "manage.py")
PRODUCTION_SECRET = "q7Vx2Lm9Rt4Kp8Zs1Nw6Hb3Jd5Fg0Cy7Ue2Ia9Oo4Xr8Tl1Ek6Mv3Bn5Qh0!"
DEMO_LOGINS = [
    "admin@openvitals.local",
    "dr.chen@openvitals.local",
    "dr.okafor@openvitals.local",
    "dr.silva@openvitals.local",
    "alice@openvitals.local",
    "bob@openvitals.local",
    "carmen@openvitals.local",
    "dev@openvitals.local",
]


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run manage.py with only PATH (and HOME) inherited from this process, plus `env`."""
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [sys.executable, MANAGE, *args],
        cwd=settings.BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": PRODUCTION_SECRET,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/openvitals",
        "DJANGO_ALLOWED_HOSTS": "api.example.org",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_production_settings_pass_the_deploy_checks():
    assert len(PRODUCTION_SECRET) == 60
    assert len(set(PRODUCTION_SECRET)) >= 5

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_load_without_a_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off." in result.stderr


def test_naming_a_database_turns_debug_off_by_default():
    """A deployment that forgets DJANGO_DEBUG gets production behaviour, so it must bring a secret key."""
    env = production_env()
    del env["DJANGO_DEBUG"]
    del env["DJANGO_SECRET_KEY"]

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("short-but-not-empty-secret-0123456789", "shorter than 50 characters"),
        ("ab" * 40, "fewer than 5 different characters"),
        ("django-insecure-" + PRODUCTION_SECRET, "Django's placeholder"),
    ],
)
def test_production_settings_refuse_to_load_with_a_weak_secret_key(key, why):
    result = manage("check", env=production_env(DJANGO_SECRET_KEY=key))

    assert result.returncode != 0, why
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is too weak for DJANGO_DEBUG off" in result.stderr


def test_a_short_secret_key_is_fine_with_debug_on(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": "dev"}

    result = manage("check", env=env)

    assert result.returncode == 0, result.stderr


def _proxy_header(**overrides: str) -> str:
    code = "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    result = manage("shell", "--no-imports", "-c", code, env=production_env(**overrides))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_x_forwarded_proto_is_trusted_only_behind_a_configured_proxy():
    assert _proxy_header() == "None"
    assert _proxy_header(NUM_PROXIES="0") == "None"
    assert _proxy_header(NUM_PROXIES="1") == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.django_db
def test_without_a_proxy_a_client_cannot_pass_for_https(as_user):
    assert settings.NUM_PROXIES == 0
    response = as_user.get("/api/v1/health-metrics/exports/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response.wsgi_request.is_secure() is False
    assert response.wsgi_request.build_absolute_uri("/").startswith("http://")


def test_deploy_checks_flag_debug_left_on():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(DJANGO_DEBUG="true"))

    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG should not be True in deployment


def test_zero_setup_migrates_and_seeds_the_demo_idempotently(tmp_path):
    db_path = tmp_path / "db.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{db_path}", "DJANGO_DEBUG": "true"}

    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    first = manage("seed_demo", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Seeded 2 organizations, 8 users, 4 care-team grants" in first.stdout
    assert first.stdout.count("(created)") == 8

    second = manage("seed_demo", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Seeded 0 organizations, 0 users, 0 care-team grants" in second.stdout
    assert second.stdout.count("(exists)") == 8
    assert "(created)" not in second.stdout

    for output in (first.stdout, second.stdout):
        assert "Demo logins (password for all: OpenVitals-demo-2026):" in output
        for email in DEMO_LOGINS:
            assert email in output

    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM accounts_user").fetchone() == (8,)
        assert db.execute("SELECT COUNT(*) FROM accounts_careteamgrant").fetchone() == (4,)
        assert db.execute("SELECT COUNT(*) FROM accounts_organization").fetchone() == (2,)


def test_openapi_schema_validates_without_warnings(tmp_path):
    schema_file = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema_file))

    schema = yaml.safe_load(schema_file.read_text())
    assert schema["info"]["title"] == "OpenVitals API"
    for path in ("/api/v1/auth/login/", "/api/v1/care-team/{id}/", "/api/v1/patients/"):
        assert path in schema["paths"]
    assert not any(path.startswith("/health") for path in schema["paths"])


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", check=True, dry_run=True, verbosity=0)  # SystemExit(1) on changes
