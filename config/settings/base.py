"""OpenVitals settings.

Everything lives here with defaults that are safe in production; deployments differ only
through environment variables (documented in .env.example and the README). With no
environment at all this is the zero-setup default: SQLite, eager Celery, local-memory
cache, console email, local media and DEBUG on.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from kombu import Queue

from config.logging import build_logging

BASE_DIR = Path(__file__).resolve().parent.parent.parent
LOCAL_DIR = BASE_DIR / ".local"  # zero-setup state: SQLite file, media, dev secret

env = environ.Env()
env.read_env(BASE_DIR / ".env")  # real environment variables win

# The zero-setup default is the only place DEBUG is on unless asked for: a deployment
# that names its database gets production behaviour by default.
DEBUG = env.bool("DJANGO_DEBUG", default=not env("DATABASE_URL", default=""))


def _dev_secret_key() -> str:
    """A secret generated once per checkout, so tokens survive a restart of `make run`."""
    path = LOCAL_DIR / "dev_secret_key"
    if not path.exists():
        LOCAL_DIR.mkdir(exist_ok=True)
        path.write_text(get_random_secret_key())
    return path.read_text().strip()


def _weak_secret_key(key: str) -> bool:
    """What Django's deploy check calls insecure (security.W009): short, repetitive, or its placeholder."""
    return len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-")


SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = _dev_secret_key()
elif not DEBUG and _weak_secret_key(SECRET_KEY):
    # Tokens, reset links and signed values are only as strong as this key: refuse to start, not warn.
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is too weak for DJANGO_DEBUG off: use at least 50 characters, at least 5 different "
        "ones, not Django's 'django-insecure-' placeholder. Make one with: python -c \"from "
        'django.core.management.utils import get_random_secret_key; print(get_random_secret_key())"'
    )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files, never from a CDN
    "drf_standardized_errors",
    "django_filters",
    "corsheaders",
    "django_celery_beat",
    "axes",
    "csp",
    "storages",
    "rest_framework_api_key",
    "accounts",
    "notifications",
    "health_metrics",
    "iot_devices",
    "appointments",
    "medications",
    "records",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "config.middleware.RequestIdHeaderMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    "config.middleware.NoStoreMiddleware",
    "config.middleware.AfterTransactionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data ---------------------------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{LOCAL_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    LOCAL_DIR.mkdir(exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Files --------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=str(LOCAL_DIR / "media"))
# Local files (exports) are health data: readable by the app's own user only, and never served by a URL.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default=None),
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,  # private health data: presigned links only
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=3600),
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Email --------------------------------------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# Seconds an SMTP connection may hang before the send fails (and a notification is retried): without it a
# stuck mail server holds a worker until the task's time limit.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="OpenVitals <no-reply@openvitals.local>")
# Where the links in emails point: the app that shows the verify / reset screens.
FRONTEND_URL = env("FRONTEND_URL", default="http://localhost:8000")

# --- Accounts and authentication ----------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first, as django-axes requires
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)  # seconds
EMAIL_VERIFICATION_TIMEOUT = env.int("EMAIL_VERIFICATION_TIMEOUT", default=3 * 24 * 60 * 60)
# Password-reset emails sent to one account in an hour, at most (the rest are dropped silently).
PASSWORD_RESET_EMAILS_PER_HOUR = env.int("PASSWORD_RESET_EMAILS_PER_HOUR", default=3)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}
# Rotation, reuse detection and logout are accounts' own (sign-in sessions, accounts/services.py), not
# SimpleJWT's blacklist app, which stored every refresh token in plaintext. A refresh token sent again
# within this many seconds of its spend (the app lost the answer and retried) gets the same new pair.
JWT_REFRESH_GRACE_SECONDS = env.int("JWT_REFRESH_GRACE_SECONDS", default=10)

# Lockout after repeated failed logins, counted per account and address together.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "email"
AXES_LOCKOUT_CALLABLE = "config.api.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Behind a proxy, set NUM_PROXIES so the client address comes from X-Forwarded-For (and the scheme from
# X-Forwarded-Proto, SECURE_PROXY_SSL_HEADER below).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
AXES_IPWARE_PROXY_COUNT = NUM_PROXIES or None
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if NUM_PROXIES else ("REMOTE_ADDR",)

# Per-IP and per-account rates for login, registration and password reset.
AUTH_THROTTLE_RATES = {
    "auth_ip": env("THROTTLE_AUTH_IP_RATE", default="30/min"),
    "auth_account": env("THROTTLE_AUTH_ACCOUNT_RATE", default="10/min"),
}

# Demo data beyond accounts, added by `manage.py seed_demo` after the demo people exist.
DEMO_SEEDERS = [
    "health_metrics.demo.seed_demo_readings",
    "health_metrics.demo.seed_demo_alerts",
    "health_metrics.demo.seed_demo_scores",
    "notifications.demo.seed_demo_escalation",
    "appointments.demo.seed_demo_appointments",
    "medications.demo.seed_demo_medications",
]

# --- API ----------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],  # DRF's, with a nesting limit
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.JSONRenderer"],  # DRF's, able to quote a lone surrogate
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["config.filters.FilterBackend"],  # filters by id never look the id up
    "DEFAULT_SCHEMA_CLASS": "drf_standardized_errors.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "NUM_PROXIES": NUM_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "COERCE_DECIMAL_TO_STRING": False,
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "config.api.ExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "config.api.ExceptionFormatter",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
}
# Largest request body accepted, in bytes (413 above); device ingest allows more.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=16 * 1024 * 1024)
# Deepest JSON nesting accepted in a request body (400 `too_deep` beyond; see config/parsers.py).
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=64)
# config.middleware.BodySizeLimitMiddleware enforces the per-view limit before the body is
# read; Django's own cap must only be no lower than the largest of them.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, INGEST_MAX_BODY_BYTES)

_errors = "drf_standardized_errors.openapi_serializers"
SPECTACULAR_SETTINGS = {
    "TITLE": "OpenVitals API",
    "DESCRIPTION": "Open-source health-data backend: accounts, care team, vitals, devices and more.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ValidationErrorEnum": f"{_errors}.ValidationErrorEnum.choices",
        "ClientErrorEnum": f"{_errors}.ClientErrorEnum.choices",
        "ServerErrorEnum": f"{_errors}.ServerErrorEnum.choices",
        "ErrorCode401Enum": f"{_errors}.ErrorCode401Enum.choices",
        "ErrorCode403Enum": f"{_errors}.ErrorCode403Enum.choices",
        "ErrorCode404Enum": f"{_errors}.ErrorCode404Enum.choices",
        "ErrorCode405Enum": f"{_errors}.ErrorCode405Enum.choices",
        "ErrorCode406Enum": f"{_errors}.ErrorCode406Enum.choices",
        "ErrorCode415Enum": f"{_errors}.ErrorCode415Enum.choices",
        "ErrorCode429Enum": f"{_errors}.ErrorCode429Enum.choices",
        "ErrorCode500Enum": f"{_errors}.ErrorCode500Enum.choices",
        "RoleEnum": "accounts.models.Role.choices",
        "SourceKindEnum": "health_metrics.models.SourceKind.choices",
        "DeviceStatusEnum": "iot_devices.models.DeviceStatus.choices",
        "BatchStatusEnum": "iot_devices.models.BatchStatus.choices",
        "ExportStatusEnum": "records.models.ExportStatus.choices",
        "AlertDirectionEnum": "health_metrics.models.AlertDirection.choices",
        "TrendDirectionEnum": ["rising", "falling", "stable"],
        "AlertStatusEnum": "health_metrics.models.AlertStatus.choices",
        "GrantStatusEnum": ["active", "expired", "revoked"],
        "ItemStatusEnum": ["created", "replaced", "duplicate", "superseded", "error"],
        "AlertRuleKindEnum": "health_metrics.models.RuleKind.choices",
        "NotificationSeverityEnum": "notifications.models.Severity.choices",
        "AlertSeverityEnum": "health_metrics.models.Severity.choices",
        "AppointmentStatusEnum": "appointments.models.AppointmentStatus.choices",
        "PlanStatusEnum": "medications.models.PlanStatus.choices",
        "DoseStatusEnum": "medications.models.DoseStatus.choices",
        "InteractionSeverityEnum": "medications.models.Severity.choices",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "config.openapi.postprocess",  # one shared error shape, summaries, the errors any operation can answer
    ],
    # The docs' scripts and styles from our own static files (drf-spectacular-sidecar), so they work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content security policy (django-csp) on every page: nothing but this server's own scripts, styles,
# images, fonts and fetches. The admin has no inline scripts; inline styles stay allowed (the admin's
# style attributes, ReDoc's generated styles), and ReDoc's search runs in a worker made from a blob.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(api|fhir)/.*$"

# --- Celery -------------------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# With no broker configured (the zero-setup default) tasks run inline, in the request.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Every task is idempotent (its docstring says how), which is what makes acks_late safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# Redis redelivers an unacknowledged task after this long: well above the hard time
# limit and any countdown we use, or a slow task would run twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With the broker down, a request gives up publishing within about a second (the work is
# stored first, and sweepers enqueue it later) instead of hanging.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name) for name in ("ingest", "default", "notifications", "integrations")]
CELERY_TASK_ROUTES = {
    "iot_devices.tasks.*": {"queue": "ingest"},
    "notifications.tasks.*": {"queue": "notifications"},
    "integrations.tasks.*": {"queue": "integrations"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "flush-expired-tokens": {
        "task": "accounts.tasks.flush_expired_tokens_task",
        "schedule": timedelta(hours=6),
    },
    "requeue-due-deliveries": {
        "task": "notifications.tasks.requeue_due_deliveries_task",
        "schedule": timedelta(minutes=1),
    },
    "escalate-unacknowledged-alerts": {
        "task": "notifications.tasks.escalate_due_task",
        "schedule": timedelta(minutes=1),
    },
    "send-due-digests": {
        "task": "notifications.tasks.send_due_digests_task",
        "schedule": timedelta(minutes=5),
    },
    "requeue-due-webhook-deliveries": {
        "task": "notifications.tasks.requeue_due_webhook_deliveries_task",
        "schedule": timedelta(minutes=1),
    },
    "purge-idle-push-devices": {
        "task": "notifications.tasks.purge_idle_push_devices_task",
        "schedule": crontab(minute=20, hour=4),  # https://crontab.guru/#20_4_*_*_*
    },
    "purge-old-changes": {
        "task": "accounts.tasks.purge_old_changes_task",
        "schedule": crontab(minute=10, hour=4),  # https://crontab.guru/#10_4_*_*_*
    },
    "requeue-outbox-emails": {
        "task": "accounts.tasks.requeue_outbox_emails_task",
        "schedule": timedelta(minutes=1),
    },
    "requeue-stranded-batches": {
        "task": "iot_devices.tasks.requeue_stranded_batches_task",
        "schedule": timedelta(minutes=1),
    },
    "check-device-health": {
        "task": "iot_devices.tasks.check_device_health_task",
        "schedule": timedelta(minutes=5),
    },
    "requeue-stranded-export-jobs": {
        "task": "records.tasks.requeue_stranded_export_jobs_task",
        "schedule": timedelta(minutes=5),
    },
    "expire-export-files": {
        "task": "records.tasks.expire_export_files_task",
        "schedule": crontab(minute=45),  # https://crontab.guru/#45_*_*_*_*
    },
    "sweep-anomalies": {
        "task": "health_metrics.tasks.sweep_anomalies_task",
        "schedule": timedelta(minutes=30),
    },
    "reconcile-daily-summaries": {
        "task": "health_metrics.tasks.reconcile_daily_summaries_task",
        "schedule": crontab(minute=30, hour=3),  # https://crontab.guru/#30_3_*_*_*
    },
    "compute-health-scores": {
        "task": "health_metrics.tasks.compute_health_scores_task",
        "schedule": crontab(minute=15),  # https://crontab.guru/#15_*_*_*_*
    },
    # Appointments (appointments/reminders.py): reminders, expired requests, no-shows.
    "send-due-appointment-reminders": {
        "task": "appointments.tasks.send_due_appointment_reminders_task",
        "schedule": timedelta(minutes=1),
    },
    "expire-appointment-requests": {
        "task": "appointments.tasks.expire_appointment_requests_task",
        "schedule": timedelta(minutes=5),
    },
    "mark-appointment-no-shows": {
        "task": "appointments.tasks.mark_appointment_no_shows_task",
        "schedule": timedelta(minutes=5),
    },
    # Medications (medications/doses.py): the next 48 h of doses, reminders, missed doses, refills, ended plans.
    "materialise-doses": {
        "task": "medications.tasks.materialise_doses_task",
        "schedule": timedelta(minutes=30),
    },
    "send-dose-reminders": {
        "task": "medications.tasks.send_dose_reminders_task",
        "schedule": timedelta(minutes=1),
    },
    "mark-missed-doses": {
        "task": "medications.tasks.mark_missed_doses_task",
        "schedule": timedelta(minutes=5),
    },
    "send-refill-reminders": {
        "task": "medications.tasks.send_refill_reminders_task",
        "schedule": timedelta(hours=1),
    },
    "complete-ended-plans": {
        "task": "medications.tasks.complete_ended_plans_task",
        "schedule": crontab(minute=5, hour=0),  # https://crontab.guru/#5_0_*_*_*
    },
}

# Push through FCM HTTP v1 (notifications/channels.py): the endpoint is configurable so tests run a local peer.
# FCM_ACCESS_TOKEN is an OAuth2 access token for the project's service account (minted by the deployment).
FCM_ENDPOINT = env("FCM_ENDPOINT", default="https://fcm.googleapis.com")
FCM_PROJECT_ID = env("FCM_PROJECT_ID", default="")
FCM_ACCESS_TOKEN = env("FCM_ACCESS_TOKEN", default="")
PUSH_DEVICE_IDLE_DAYS = env.int("PUSH_DEVICE_IDLE_DAYS", default=270)
# The local hour (0-23, the person's profile time zone) at which daily digests go out (notifications/digests.py).
NOTIFICATION_DIGEST_HOUR = env.int("NOTIFICATION_DIGEST_HOUR", default=8)
# Minutes a critical alert may stay unacknowledged before each escalation step, where no organization's
# EscalationPolicy says otherwise (notifications/escalation.py).
NOTIFICATION_ESCALATION_MINUTES = env.int("NOTIFICATION_ESCALATION_MINUTES", default=15)
# A delivery claimed (`sending`) this long ago by a worker that vanished is handed on by the sweeper.
NOTIFICATION_STALE_CLAIM_SECONDS = env.int("NOTIFICATION_STALE_CLAIM_SECONDS", default=300)

# Secrets stored encrypted (config/crypto.py): Fernet keys, comma separated; the first encrypts, all decrypt
# (rotation). Empty: one key derived from SECRET_KEY, fine for the zero-setup demo; production must set it.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# Outbound webhooks (notifications/webhooks.py): https only unless WEBHOOK_ALLOW_HTTP (on only in DEBUG by
# default); an address that is not global (private, loopback, link-local, metadata...) is refused unless it
# lies in WEBHOOK_ALLOWED_NETWORKS (CIDRs). A rotated secret stays valid this many hours; a subscription is
# disabled after this many deliveries in a row failed for good.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
WEBHOOK_SECRET_ROTATION_HOURS = env.int("WEBHOOK_SECRET_ROTATION_HOURS", default=24)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=5)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# The CA certificates webhook endpoints are checked against (a file); empty: certifi's, as requests uses.
WEBHOOK_CA_BUNDLE = env("WEBHOOK_CA_BUNDLE", default="")

# Push to Apple devices through APNs with token-based auth (notifications/apns.py): a provider JWT (ES256)
# signed with the .p8 key, APNS_AUTH_KEY (its PEM text; "\n" escapes are read as newlines), for APNS_TOPIC
# (the app's bundle id). Without a key, APNs devices are `not_sent` (push_not_configured); FCM ones still send.
APNS_ENDPOINT = env("APNS_ENDPOINT", default="https://api.push.apple.com")  # sandbox: api.sandbox.push.apple.com
APNS_KEY_ID = env("APNS_KEY_ID", default="")
APNS_TEAM_ID = env("APNS_TEAM_ID", default="")
APNS_AUTH_KEY = env("APNS_AUTH_KEY", default="")
APNS_TOPIC = env("APNS_TOPIC", default="")

# Text messages (notifications/sms.py) go through SMS_BACKEND: the default only logs (nothing leaves the
# machine); notifications.sms.HttpBackend speaks Twilio's Messages API at SMS_HTTP_ENDPOINT. Only to a
# number the person verified by a code (notifications/phone/verify/ and confirm/) that equals their profile's.
SMS_BACKEND = env("SMS_BACKEND", default="notifications.sms.LogBackend")
SMS_HTTP_ENDPOINT = env("SMS_HTTP_ENDPOINT", default="https://api.twilio.com")
SMS_ACCOUNT_SID = env("SMS_ACCOUNT_SID", default="")
SMS_AUTH_TOKEN = env("SMS_AUTH_TOKEN", default="")
SMS_FROM = env("SMS_FROM", default="")
PHONE_CODE_TTL_MINUTES = env.int("PHONE_CODE_TTL_MINUTES", default=10)
PHONE_CODE_MAX_ATTEMPTS = env.int("PHONE_CODE_MAX_ATTEMPTS", default=5)
# Per person: codes sent (each is a paid text) and codes tried.
PHONE_THROTTLE_RATES = {
    "phone_verify": env("THROTTLE_PHONE_VERIFY_RATE", default="5/hour"),
    "phone_confirm": env("THROTTLE_PHONE_CONFIRM_RATE", default="30/hour"),
}

# Offline sync (`changes/?since=`, accounts/sync.py): change rows, tombstones included, are kept this many
# days; a cursor older than one day less answers 410 and the app syncs from the start. Ids per answer.
SYNC_CHANGE_RETENTION_DAYS = env.int("SYNC_CHANGE_RETENTION_DAYS", default=90)
SYNC_PAGE_SIZE = env.int("SYNC_PAGE_SIZE", default=1000)

# Rollups are recomputed this long after a write, once for all writes in between.
ROLLUP_DELAY_SECONDS = env.int("ROLLUP_DELAY_SECONDS", default=5)

# An export of more readings than this is made by a worker (an ExportJob) instead of in the request.
EXPORT_SYNC_MAX_READINGS = env.int("EXPORT_SYNC_MAX_READINGS", default=50_000)
# Export files are deleted this long after they were made (an hourly job); the job then reads `expired`.
EXPORT_RETENTION_HOURS = env.int("EXPORT_RETENTION_HOURS", default=72)

# A patient cancels or reschedules their own appointment up to this many hours before its start (400 after);
# the provider may at any time (while the appointment is requested or confirmed).
APPOINTMENT_CANCEL_CUTOFF_HOURS = env.int("APPOINTMENT_CANCEL_CUTOFF_HOURS", default=24)
# Reminders go to the patient this many minutes before a confirmed appointment (comma separated, appointments/
# reminders.py); an unconfirmed request is cancelled (`expired`) this many hours before its start; a confirmed
# appointment not checked in this many minutes after its start becomes a no-show.
APPOINTMENT_REMINDER_OFFSETS_MINUTES = env.list("APPOINTMENT_REMINDER_OFFSETS_MINUTES", cast=int, default=[1440, 60])
APPOINTMENT_REQUEST_EXPIRY_HOURS = env.int("APPOINTMENT_REQUEST_EXPIRY_HOURS", default=2)
APPOINTMENT_NO_SHOW_GRACE_MINUTES = env.int("APPOINTMENT_NO_SHOW_GRACE_MINUTES", default=15)
# The calendar feed (appointments/calendar.py): how often calendar apps are asked to refresh it, and how far back
# it reaches.
APPOINTMENT_CALENDAR_REFRESH_MINUTES = env.int("APPOINTMENT_CALENDAR_REFRESH_MINUTES", default=60)
APPOINTMENT_CALENDAR_PAST_DAYS = env.int("APPOINTMENT_CALENDAR_PAST_DAYS", default=90)

# Doses (medications/doses.py): materialised this many hours ahead; a dose may be logged from EARLY minutes before
# its time; one not logged GRACE minutes after it becomes missed, and one taken after that is late.
MEDICATION_DOSE_HORIZON_HOURS = env.int("MEDICATION_DOSE_HORIZON_HOURS", default=48)
MEDICATION_DOSE_EARLY_MINUTES = env.int("MEDICATION_DOSE_EARLY_MINUTES", default=120)
MEDICATION_DOSE_GRACE_MINUTES = env.int("MEDICATION_DOSE_GRACE_MINUTES", default=60)

# An ingest batch still "processing" after this many seconds was abandoned (its worker
# died): the sweeper hands it to another. Above the hard time limit.
INGEST_STALE_SECONDS = env.int("INGEST_STALE_SECONDS", default=2 * CELERY_TASK_TIME_LIMIT)
# A batch whose processing crashed (or was abandoned) this many times ends "failed" with the
# reason, and its owner gets a device alert; below it the sweeper tries the batch again.
INGEST_MAX_ATTEMPTS = env.int("INGEST_MAX_ATTEMPTS", default=5)

# --- Security (DEBUG off) -----------------------------------------------------------

# X-Forwarded-Proto says "this came over HTTPS" only when a proxy in front sets it (NUM_PROXIES); without
# one, any client could send it and pass for a secure request.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if NUM_PROXIES else None
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/"]  # load-balancer probes speak plain HTTP
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Time and language --------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: structured JSON, every line with the request id -----------------------

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
DJANGO_STRUCTLOG_CELERY_ENABLED = True  # request ids travel with the tasks they enqueue
LOGGING = build_logging(level=LOG_LEVEL)
