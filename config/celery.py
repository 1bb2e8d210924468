"""The Celery app, per the official Celery-Django recipe.

Settings come from Django's (the CELERY_ namespace in config/settings/base.py): queues
`ingest`, `default`, `notifications` and `integrations`, acks_late, prefetch 1, time limits,
the Redis visibility timeout, and the beat schedule that django-celery-beat's database
scheduler loads so staff can see and tune it in the admin.

Workers log like the web processes: JSON lines, and a task's lines carry the request id
of the request that enqueued it (django-structlog's Celery integration).
"""

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging, worker_process_init, worker_ready
from django_structlog.celery.steps import DjangoStructLogInitStep

from config.startup import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("openvitals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["worker"].add(DjangoStructLogInitStep)
app.autodiscover_tasks()


@setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Keep Celery from replacing our JSON logging with its plain-text format."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_ready.connect
@worker_process_init.connect
def freeze_imports(**kwargs) -> None:
    """Once the tasks are imported (a solo worker when ready, each prefork child when forked): see config/startup.py."""
    freeze_startup_objects()
