"""What every benchmark here shares: stderr progress, the JSON line's numbers, the throwaway database.

Imported after django.setup().
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable

from django.db import connection


def err(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def tidy(value: object) -> object:
    """Floats rounded for the JSON line; NaN or infinity (not JSON) as null."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def drop_throwaway_database(test_name: str, old_name: str) -> None:
    """Drop the bench database, and never any other: destroy_test_db drops whatever NAME is now."""
    with contextlib.suppress(Exception):
        connection.close()
    try:
        if connection.settings_dict["NAME"] == test_name:
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        else:  # creation failed before switching over; the database may or may not exist
            with connection.creation._nodb_cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{test_name}"')
        err(f"Dropped the throwaway database {test_name}.")
    except Exception as exc:  # noqa: BLE001 - say so, and let the original error (if any) surface
        err(f"Could not drop the throwaway database {test_name}: {exc}; drop it by hand (README).")


def run_in_throwaway_database(prefix: str, run: Callable[[dict], None], headline: list[str]) -> int:
    """Migrate a database of this process's own, fill `report` through `run`, drop the database (even on
    failure or SIGTERM), and print the total time and, as the last line, the report as JSON, headline first.

    A name of its own, so a concurrent `make test` (test_openvitals, _gwN) is never clobbered.
    """
    test_name = f"{prefix}_{os.getpid()}"
    connection.settings_dict.setdefault("TEST", {})
    connection.settings_dict["TEST"]["NAME"] = test_name
    old_name = connection.settings_dict["NAME"]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` drops the database
    report: dict = {}
    started = time.perf_counter()
    err(f"Creating the throwaway database {test_name} (migrations included)...")
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        run(report)
    finally:
        drop_throwaway_database(test_name, old_name)
    report["total_s"] = time.perf_counter() - started
    print(f"\nTotal {report['total_s']:.0f} s")
    ordered = {k: report[k] for k in headline} | {k: v for k, v in report.items() if k not in headline}
    print(json.dumps({k: tidy(v) for k, v in ordered.items()}))
    return 0
