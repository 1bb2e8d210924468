"""gunicorn reads this file from the working directory (/app in the image, the checkout under compose).

The access log writes the path without its query string: a query may carry a secret (the calendar feed's
`?token=`, issue #13 §3), which calendar apps cannot send in a header. django-structlog's request lines keep the
query with such values redacted (config/logging.py). Otherwise gunicorn's default format.
"""

access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
