"""Device registration and keys, batch ingestion, heartbeats."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from config.errors import ConflictError, field_error
from config.inputs import InputError, text_error, utc_datetime
from config.sweeps import Sweep, enqueue_each
from health_metrics.ingest import ingest_readings
from health_metrics.models import SourceKind
from health_metrics.services import create_data_source

from .configuration import read_configuration
from .events import emit_device_alert
from .models import BatchStatus, Device, DeviceAlert, DeviceAlertKind, DeviceAPIKey, IngestBatch

MAX_BATCH_READINGS = 10_000

logger = logging.getLogger(__name__)


class BatchTooLarge(Exception):
    """More readings than one batch may carry (mapped to 413)."""


@transaction.atomic
def register_device(*, owner: User, **fields: Any) -> tuple[Device, str]:
    """Create a device, its data source and its key; the key is returned here and never again."""
    source = create_data_source(user=owner, kind=SourceKind.DEVICE, name=fields.get("name") or "Device")
    device = Device.objects.create(owner=owner, data_source=source, **fields)
    _, key = DeviceAPIKey.objects.create_key(device=device, name=device.name[:50])
    return device, key


@transaction.atomic
def rotate_device_key(*, device: Device) -> str:
    """A new key; the old one stops working at once."""
    DeviceAPIKey.objects.filter(device=device).delete()
    _, key = DeviceAPIKey.objects.create_key(device=device, name=device.name[:50])
    return key


def canonical_payload(readings: list) -> bytes:
    """The readings as canonical JSON: what is stored, and what the digest is taken over.

    A lone surrogate (a reading's `\\ud800`) has no UTF-8 form; it is written as its surrogate bytes
    ("surrogatepass"), which `json.loads` of bytes reads back as the same text, so the reading reaches
    validation and is refused there as that item's error, like U+0000.
    """
    return json.dumps(readings, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


_SURROGATE_BYTES = re.compile(b"\xed[\xa0-\xbf]")  # U+D800 to U+DFFF encoded as by "surrogatepass"


def text_is_storable(payload: bytes) -> bool:
    """Whether no text in a canonical payload holds U+0000 (written `\\u0000`) or a lone surrogate.

    Measured hot path: two byte searches over the payload (a fraction of a millisecond per megabyte);
    when both find nothing, the readings skip the per-item text check.
    """
    return b"\\u0000" not in payload and (b"\xed" not in payload or not _SURROGATE_BYTES.search(payload))


@transaction.atomic
def receive_batch(*, device: Device, body: Any) -> tuple[IngestBatch, bool]:
    """Check the envelope, store the batch and enqueue it on commit.

    Answers (batch, created). The same batch_id with the same readings answers the stored
    batch and stores nothing; with different readings it is a conflict.
    """
    if not isinstance(body, dict):
        raise field_error("non_field_errors", "Expected a JSON object with batch_id and readings.")
    batch_id = body.get("batch_id")
    if not isinstance(batch_id, str | int) or isinstance(batch_id, bool) or not str(batch_id).strip():
        raise field_error("batch_id", "A batch_id (a string of your choosing) is required.", code="required")
    batch_id = str(batch_id).strip()
    if len(batch_id) > 100:
        raise field_error("batch_id", "At most 100 characters.", code="max_length")
    unstorable = text_error(batch_id)
    if unstorable is not None:
        raise field_error("batch_id", unstorable.message, code=unstorable.code)
    readings = body.get("readings")
    if not isinstance(readings, list) or not readings:
        raise field_error("readings", "A non-empty list of readings is required.", code="required")
    if len(readings) > MAX_BATCH_READINGS:
        raise BatchTooLarge(f"{len(readings)} readings; a batch carries at most {MAX_BATCH_READINGS:,}.")
    sent_at = body.get("sent_at")
    if sent_at is not None:
        try:
            parsed = parse_datetime(sent_at) if isinstance(sent_at, str) else None
        except ValueError:  # well-formed but impossible, e.g. month 13
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise field_error("sent_at", "Must be an ISO 8601 datetime with an offset.")
        try:
            sent_at = utc_datetime(parsed)
        except InputError as error:
            raise field_error("sent_at", error.message, code=error.code) from None
    payload = canonical_payload(readings)
    digest = hashlib.sha256(payload).hexdigest()
    try:
        with transaction.atomic():
            batch = IngestBatch.objects.create(
                device=device,
                batch_id=batch_id,
                payload=payload,
                payload_sha256=digest,
                reading_count=len(readings),
                sent_at=sent_at,
            )
    except IntegrityError:
        batch = IngestBatch.objects.get(device=device, batch_id=batch_id)
        if batch.payload_sha256 != digest:
            raise ConflictError(
                f"Batch {batch_id!r} was already received with different readings.", code="batch_id_reused", status=422
            ) from None
        return batch, False
    enqueue_batch(batch)
    return batch, True


def enqueue_batch(batch: IngestBatch) -> None:
    from .tasks import process_batch_task

    # robust: with the broker down the upload still succeeds (the batch is stored); the
    # sweeper enqueues it once the broker is back.
    transaction.on_commit(lambda: process_batch_task.delay(str(batch.pk)), robust=True)


def _stale_before(now):  # noqa: ANN001, ANN202
    """A batch processing since before this was abandoned: no task runs past the hard time limit."""
    return now - timedelta(seconds=settings.INGEST_STALE_SECONDS)


def _claim(batch_id: Any) -> bool:
    """Take the batch for processing: received, or processing but abandoned (the worker died).

    Each claim counts an attempt. A batch that has had INGEST_MAX_ATTEMPTS is not taken: it ends failed.
    """
    now = timezone.now()
    stale = _stale_before(now)
    claimable = IngestBatch.objects.filter(pk=batch_id).filter(
        Q(status=BatchStatus.RECEIVED) | Q(status=BatchStatus.PROCESSING, started_at__lt=stale)
    )
    claimed = claimable.filter(attempts__lt=settings.INGEST_MAX_ATTEMPTS).update(
        status=BatchStatus.PROCESSING, started_at=now, attempts=F("attempts") + 1, failure_reason=""
    )
    if claimed == 1:
        return True
    with transaction.atomic():
        exhausted = claimable.filter(attempts__gte=settings.INGEST_MAX_ATTEMPTS).select_for_update().first()
        if exhausted is not None:
            if exhausted.status == BatchStatus.PROCESSING:  # the last attempt never came back to say why
                reason = "The worker stopped in the middle of the batch (killed, or over its time limit)."
            else:
                reason = exhausted.failure_reason or "No attempts left."
            _fail_batch(exhausted, reason=reason, now=now)
    return False


def run_batch(*, batch_id: Any) -> IngestBatch | None:
    """Process a batch (what the task runs); when processing raises, keep the reason and try again later.

    Processing's own transaction is rolled back, so the reason is stored in another one. Below
    INGEST_MAX_ATTEMPTS the batch goes back to `received` for the sweeper to enqueue again; at
    the cap it ends `failed` and its owner gets a `batch_failed` device alert.
    """
    try:
        return process_batch(batch_id=batch_id)
    except Exception as exc:  # any crash: a bug or bad data must not leave the batch processing for ever
        logger.exception("Ingest batch %s crashed", batch_id)
        reason = f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")[:2000]
    with transaction.atomic():
        batch = IngestBatch.objects.select_for_update().filter(pk=batch_id, status=BatchStatus.PROCESSING).first()
        if batch is None:  # deleted since, or no longer this attempt's
            return None
        if batch.attempts >= settings.INGEST_MAX_ATTEMPTS:
            _fail_batch(batch, reason=reason, now=timezone.now())
        else:
            IngestBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.RECEIVED, failure_reason=reason)
    batch.refresh_from_db()
    return batch


def _fail_batch(batch: IngestBatch, *, reason: str, now) -> None:  # noqa: ANN001
    """End a batch `failed` with its reason and tell its owner: one `batch_failed` alert per batch."""
    IngestBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.FAILED, failure_reason=reason, finished_at=now)
    message = f"Batch {batch.batch_id} failed after {batch.attempts} attempts: {reason}"
    alert, created = DeviceAlert.objects.get_or_create(
        batch=batch,
        defaults={"device_id": batch.device_id, "kind": DeviceAlertKind.BATCH_FAILED, "message": message[:255]},
    )
    if created:
        emit_device_alert(alert=alert)


def process_batch(*, batch_id: Any) -> IngestBatch | None:
    """Validate, convert and store a batch's readings; record what happened to each.

    Safe to run twice: it claims the batch by a conditional update first, and readings are
    unique per (data source, type, recorded_at), so a re-run after a crash stores nothing twice.
    """
    if not _claim(batch_id):
        return None
    batch = IngestBatch.objects.select_related("device__data_source").get(pk=batch_id)
    device = batch.device
    with transaction.atomic():
        now = timezone.now()
        # The one ingest path, into the device's own data source.
        payload = bytes(batch.payload)  # canonical JSON
        outcome = ingest_readings(
            data_source=device.data_source,
            items=json.loads(payload),
            now=now,
            text_checked=text_is_storable(payload),
        )
        errors = [{"index": r.index, **r.error} for r in outcome.errors]
        accepted = outcome.count("created") + outcome.count("replaced")
        duplicates = outcome.count("duplicate") + outcome.count("superseded")
        if not errors:
            status = BatchStatus.DONE
        else:
            status = BatchStatus.PARTIAL if accepted or duplicates else BatchStatus.FAILED
        IngestBatch.objects.filter(pk=batch.pk).update(
            status=status,
            accepted=accepted,
            duplicates=duplicates,
            rejected=len(errors),
            errors=errors[:1000],
            finished_at=now,
        )
        Device.objects.filter(pk=device.pk).update(last_seen_at=now)
    batch.refresh_from_db()
    return batch


def requeue_stranded_batches(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Re-enqueue batches never picked up (the broker was down), put back after a crash, or abandoned
    mid-way (the worker died). A batch out of attempts is enqueued too: its claim fails it."""
    now = timezone.now()
    stale = _stale_before(now)
    stranded = IngestBatch.objects.filter(
        Q(status=BatchStatus.RECEIVED, received_at__lt=now - older_than)
        | Q(status=BatchStatus.PROCESSING, started_at__lt=stale)
    ).values_list("pk", flat=True)
    from .tasks import process_batch_task

    return enqueue_each(process_batch_task, stranded, limit=10_000)


def record_heartbeat(*, device: Device, data: dict[str, Any]) -> Device:
    fields = {"last_seen_at": timezone.now()}
    for name in ("battery_level", "signal_strength", "firmware_version", "status"):
        if name in data:
            fields[name] = data[name]
    Device.objects.filter(pk=device.pk).update(**fields)
    device.refresh_from_db()
    return device


# --- Device alerts ----------------------------------------------------------------------

REJECTED_RUN = 3  # this many finished batches in a row with rejected readings and none accepted


def _set_episode(device: Device, kind: str, *, active: bool, message: str, now) -> None:  # noqa: ANN001
    """Open the kind's alert when the condition holds and none is open; resolve it when it clears."""
    if active:
        if not DeviceAlert.objects.filter(device=device, kind=kind, resolved_at__isnull=True).exists():
            try:
                with transaction.atomic():
                    alert = DeviceAlert.objects.create(device=device, kind=kind, message=message)
                    emit_device_alert(alert=alert)
            except IntegrityError:  # opened concurrently: one episode either way
                pass
    else:
        DeviceAlert.objects.filter(device=device, kind=kind, resolved_at__isnull=True).update(resolved_at=now)


def check_device_health(*, now=None) -> dict[str, int]:  # noqa: ANN001
    """Open or resolve device alerts: silence past the device's threshold, battery under its threshold,
    and a run of batches whose readings were all rejected. Idempotent: one alert per episode.

    One device's failure (a configuration stored before it was checked) is logged and counted in
    `failed`; every other device is still checked.
    """
    now = now or timezone.now()
    opened_before = DeviceAlert.objects.filter(resolved_at__isnull=True).count()
    sweep = Sweep("check_device_health")
    for device in Device.objects.filter(is_active=True).iterator():
        with sweep.item(device=device.pk):
            _check_device(device, now=now)
    open_now = DeviceAlert.objects.filter(resolved_at__isnull=True).count()
    return {"open": open_now, "change": open_now - opened_before, "failed": sweep.failed}


def _check_device(device: Device, *, now) -> None:  # noqa: ANN001
    config = read_configuration(device.configuration)
    minutes = config.offline_after_minutes
    silent = device.last_seen_at is not None and device.last_seen_at < now - timedelta(minutes=minutes)
    _set_episode(
        device, DeviceAlertKind.OFFLINE, active=silent, message=f"No contact for over {minutes} minutes.", now=now
    )
    low = device.battery_level is not None and device.battery_level < config.low_battery_percent
    _set_episode(
        device,
        DeviceAlertKind.LOW_BATTERY,
        active=low,
        message=f"Battery at {device.battery_level}%.",
        now=now,
    )
    recent = list(
        IngestBatch.objects.filter(device=device, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("accepted", "rejected")[:REJECTED_RUN]
    )
    failing = len(recent) == REJECTED_RUN and all(accepted == 0 and rejected > 0 for accepted, rejected in recent)
    _set_episode(
        device,
        DeviceAlertKind.REJECTED_READINGS,
        active=failing,
        message=f"The last {REJECTED_RUN} batches had every reading rejected.",
        now=now,
    )


def acknowledge_device_alert(*, alert: DeviceAlert, by: User) -> DeviceAlert:
    if alert.device.owner_id != by.pk and not by.is_clinician and not by.sees_all_patients:
        raise PermissionDenied("Only the owner or their care team acknowledges a device alert.")
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = timezone.now(), by
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    return alert
