import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config.startup import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
application = get_wsgi_application()
import_module(settings.ROOT_URLCONF)  # every view imported now rather than on the first request
freeze_startup_objects()  # the app is loaded: see config/startup.py
