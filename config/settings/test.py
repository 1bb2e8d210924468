"""Test settings: real PostgreSQL and Redis, with only speed settings changed.

`make test` provides DATABASE_URL and REDIS_URL (defaults: the local servers). Under
pytest-xdist every process gets its own test database (pytest-django) and its own Redis
database number, since they would otherwise share cache keys and broker queues.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/openvitals")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 32)
os.environ.setdefault("DJANGO_DEBUG", "false")

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
# db 0 is left to `make run`; TEST_REDIS_DB_BASE lets two test sessions on one machine keep apart.
_redis_db = int(os.environ.get("TEST_REDIS_DB_BASE", "1")) + int(_worker.removeprefix("gw") or 0)
os.environ["REDIS_URL"] = os.environ["REDIS_URL"].rsplit("/", 1)[0] + f"/{_redis_db}"
os.environ.pop("CELERY_BROKER_URL", None)

from .base import *  # noqa: E402, F403
from .base import STORAGES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "notifications.sms.LocmemBackend"
CELERY_TASK_ALWAYS_EAGER = True  # tests that need a real worker switch it off
CELERY_TASK_EAGER_PROPAGATES = True
SECURE_SSL_REDIRECT = False
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
WEBHOOK_ALLOW_HTTP = True  # the tests' receiver is plain HTTP on loopback
