"""Once a long-running process has loaded the app, move what it imported out of the collector's way.

A device batch of 10,000 readings creates some 100,000 short-lived objects, enough to set off a full
collection in most batches, and a full collection walks every object the process holds: about 200,000
after Django and the apps are imported, 180 ms of a 10,000-reading batch on this machine (bench/ingest.py,
with and without). Modules, classes and functions live as long as the process, so `gc.freeze()` moves them
to the permanent generation, which collections skip (the use the Python docs describe for forking servers).
The web process does it after loading the app (config/wsgi.py), a Celery worker once it is ready or forked
(config/celery.py).
"""

import gc


def freeze_startup_objects() -> int:
    """Exclude every object alive now from future collections; answers how many are frozen in all."""
    gc.collect()  # what is garbage already goes now, not into the permanent generation
    gc.freeze()
    return gc.get_freeze_count()
