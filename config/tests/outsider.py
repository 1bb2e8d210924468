"""Third-party admin models in the outsider registry (tests/test_outsider.py): none holds patient data."""

ADMIN_STAFF_ONLY = {
    "auth.group": "permission groups",
    "django_celery_beat.periodictask": "the beat schedule",
    "django_celery_beat.clockedschedule": "the beat schedule",
    "django_celery_beat.crontabschedule": "the beat schedule",
    "django_celery_beat.solarschedule": "the beat schedule",
    "django_celery_beat.intervalschedule": "the beat schedule",
    "axes.accessattempt": "sign-in lockout bookkeeping",
    "axes.accesslog": "sign-in lockout bookkeeping",
    "axes.accessfailurelog": "sign-in lockout bookkeeping",
    "rest_framework_api_key.apikey": "the library's own key model, unused (devices use iot_devices.DeviceAPIKey)",
}
