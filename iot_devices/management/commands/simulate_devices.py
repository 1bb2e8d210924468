"""Simulate devices: register them for the demo patients and post realistic batches over HTTP.

The demo of the ingestion path and its load generator: it talks to a running server
(`make run`, or the compose stack) exactly as device firmware would.

    python manage.py simulate_devices --devices 8 --minutes 120 --url http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import math
import random
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError

from accounts.management.commands.seed_demo import DEMO_PASSWORD, PATIENTS

DEVICE_KINDS = [
    ("smartwatch", "heart_rate", "/min"),
    ("pulse_oximeter", "oxygen_saturation", "%"),
    ("fitness_tracker", "heart_rate", "bpm"),
    ("thermometer", "body_temperature", "°F"),
]


class Command(BaseCommand):
    help = "Register simulated devices for the demo patients and post batches of readings to a running server."

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=int, default=4, help="How many devices (spread over demo patients).")
        parser.add_argument("--minutes", type=int, default=60, help="Minutes of readings each device sends.")
        parser.add_argument("--batch-minutes", type=int, default=15, help="Minutes of readings per batch.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server's base URL.")
        parser.add_argument("--password", default=DEMO_PASSWORD, help="The demo patients' password.")

    def handle(self, *args, **options):
        base = options["url"].rstrip("/") + "/api/v1"
        if options["devices"] < 1 or options["minutes"] < 1 or options["batch_minutes"] < 1:
            raise CommandError("--devices, --minutes and --batch-minutes must be at least 1.")
        devices = self.register(base, options["devices"], options["password"])
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(minutes=options["minutes"])
        windows = math.ceil(options["minutes"] / options["batch_minutes"])
        posted, readings_sent, urls = 0, 0, []
        began = time.perf_counter()
        for window in range(windows):
            first = start + timedelta(minutes=window * options["batch_minutes"])
            for number, (key, kind) in enumerate(devices, start=1):
                readings = _readings(kind, first, min(options["batch_minutes"], options["minutes"]), seed=number)
                body = {"batch_id": f"sim-{uuid.uuid4()}", "sent_at": now.isoformat(), "readings": readings}
                status, answer = _call("POST", f"{base}/iot-devices/ingest/", body, headers={"X-Device-Key": key})
                if status not in (200, 202):
                    raise CommandError(f"Upload refused ({status}): {answer}")
                posted += 1
                readings_sent += len(readings)
                urls.append((key, answer["url"]))
                self.stdout.write(
                    f"\r  window {window + 1}/{windows}  device {number}/{len(devices)}  "
                    f"batches {posted}  readings {readings_sent}",
                    ending="",
                )
                self.stdout.flush()
        elapsed = time.perf_counter() - began
        self.stdout.write(f"\nPosted {posted} batches ({readings_sent} readings) in {elapsed:.1f} s.")
        self.report(urls)

    def register(self, base: str, count: int, password: str) -> list[tuple[str, tuple]]:
        tokens = {}
        devices = []
        for number in range(count):
            email = PATIENTS[number % len(PATIENTS)]["email"]
            if email not in tokens:
                status, answer = _call("POST", f"{base}/auth/login/", {"email": email, "password": password})
                if status != 200:
                    raise CommandError(f"Cannot log in as {email} ({status}): {answer}. Run `manage.py seed_demo`.")
                tokens[email] = answer["tokens"]["access"]
            kind = DEVICE_KINDS[number % len(DEVICE_KINDS)]
            status, answer = _call(
                "POST",
                f"{base}/iot-devices/",
                {"name": f"Simulated {kind[0].replace('_', ' ')} {number + 1}", "device_type": kind[0]},
                headers={"Authorization": f"Bearer {tokens[email]}"},
            )
            if status != 201:
                raise CommandError(f"Cannot register a device for {email} ({status}): {answer}")
            devices.append((answer["api_key"], kind))
            self.stdout.write(f"  registered {answer['name']} for {email}")
        return devices

    def report(self, urls: list[tuple[str, str]]) -> None:
        """Wait briefly for the workers, then count the batches by status."""
        statuses: dict[str, int] = {}
        deadline = time.monotonic() + 30
        for key, url in urls:
            while True:
                _, answer = _call("GET", url, headers={"X-Device-Key": key})
                if answer.get("status") not in ("received", "processing") or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            statuses[answer.get("status", "unknown")] = statuses.get(answer.get("status", "unknown"), 0) + 1
        self.stdout.write("Batches by status: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))


def _readings(kind: tuple, first: datetime, minutes: int, *, seed: int) -> list[dict]:
    _, metric_type, unit = kind
    rng = random.Random(f"{seed}-{first.isoformat()}")
    readings = []
    for minute in range(minutes):
        at = first + timedelta(minutes=minute)
        if metric_type == "heart_rate":
            value = round(62 + 12 * math.sin(at.hour / 24 * 2 * math.pi) + rng.gauss(0, 3))
        elif metric_type == "oxygen_saturation":
            value = round(min(100, rng.gauss(97, 1)))
        else:
            value = round(rng.gauss(98.2, 0.4), 1)
        readings.append({"metric_type": metric_type, "value": value, "unit": unit, "recorded_at": at.isoformat()})
    return readings


def _call(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the operator's URL
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except urllib.error.URLError as exc:
        raise CommandError(f"Cannot reach {url}: {exc.reason}. Is the server running?") from None
