"""The Celery app, per the official Celery-Django recipe.

Settings come from Django's (the CELERY_ namespace in config/settings/base.py): queues
`ingest`, `default`, `notifications` and `integrations`, acks_late, prefetch 1, time limits,
the Redis visibility timeout, and the beat schedule that django-celery-beat's database
scheduler loads so staff can see and tune it in the admin.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("openvitals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
