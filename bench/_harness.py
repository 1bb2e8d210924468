"""What every benchmark here shares: stderr progress, the JSON line's numbers, the throwaway database.

Imported after django.setup().
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys

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
