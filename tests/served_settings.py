"""Settings for an app server or Celery worker that a test runs as a real process (tests/processes.py).

The test settings, except that tasks always go through the broker, and the cache, the broker and
email go where the test says (its own Redis servers, which it stops and starts, and its SMTP peer):
SERVED_CACHE_URL, SERVED_BROKER_URL, SERVED_SMTP_PORT.
"""

import os

from config.settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False

if os.environ.get("SERVED_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["SERVED_CACHE_URL"],
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
if os.environ.get("SERVED_BROKER_URL"):
    CELERY_BROKER_URL = os.environ["SERVED_BROKER_URL"]
if os.environ.get("SERVED_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = int(os.environ["SERVED_SMTP_PORT"])
    EMAIL_HOST_USER = EMAIL_HOST_PASSWORD = ""
    EMAIL_USE_TLS = EMAIL_USE_SSL = False
    EMAIL_TIMEOUT = 5
