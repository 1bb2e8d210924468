"""Exports of a patient's readings: CSV (streamed), a PDF report, a FHIR R4 Bundle; large ones made by a worker.

A FHIR export of all types (no metric type named) also carries the patient's appointments of the period and
their medication plans that overlap it, when the one who asked may see them (the patient; a clinician with the
appointments, or the medications, scope; a provider, their own appointments).

A CSV never sits whole in memory: rows come from a server-side cursor in chunks and leave as lines, to the
client (a streaming response) or to a temporary file (a job). The PDF and the FHIR Bundle are built in memory:
the PDF holds only aggregates, and the Bundle is one JSON document. An export above
EXPORT_SYNC_MAX_READINGS readings, or one asked for with async, becomes an ExportJob whose file lands in the
default storage (S3 when configured) for the user to fetch.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import structlog
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Avg, Q, QuerySet
from django.utils import timezone
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from storages.backends.s3 import S3Storage

from accounts.models import User
from accounts.selectors import user_timezone
from appointments.models import Appointment
from config.sweeps import Sweep, enqueue_each
from health_metrics.catalog import get_catalog
from health_metrics.display import format_value
from health_metrics.models import AlertStatus, HealthAlert, MetricType, Reading
from health_metrics.selectors import bucket_stats, merged
from medications.models import MedicationPlan
from notifications.services import notify

from .fhir import bundle_for_export, plans_for_fhir
from .models import ExportFormat, ExportJob, ExportStatus

logger = structlog.get_logger(__name__)

# A longer span can only be made by a worker (async); nothing spans more than ten years.
SYNC_MAX_DAYS = 366
MAX_DAYS = 3660
# Rows fetched per round trip of the server-side cursor behind a CSV.
CSV_CHUNK_SIZE = 2000

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.PDF: "application/pdf",
    ExportFormat.FHIR: "application/fhir+json",
}
EXTENSIONS = {ExportFormat.CSV: "csv", ExportFormat.PDF: "pdf", ExportFormat.FHIR: "fhir.json"}

CSV_HEADER = (
    "id",
    "recorded_at_utc",
    "ended_at_utc",
    "local_date",
    "metric_type",
    "loinc",
    "value",
    "secondary_value",
    "unit",
    "original_value",
    "original_secondary_value",
    "original_unit",
    "source",
    "data_source_id",
)
_CSV_FIELDS = (
    "id",
    "recorded_at",
    "ended_at",
    "local_date",
    "metric_type_id",
    "value",
    "secondary_value",
    "original_value",
    "original_secondary_value",
    "original_unit",
    "data_source__kind",
    "data_source_id",
)


# --- What an export holds ------------------------------------------------------------------------


def export_readings(*, patient: User, start: date, end: date, metric_type: MetricType | None = None) -> QuerySet:
    """The patient's readings of the local days start..end (both inclusive), oldest first.

    Daily totals as every other view shows them: of each day, the highest-priority source's (see selectors.merged).
    """
    readings = merged(Reading.objects.filter(user=patient, local_date__gte=start, local_date__lte=end))
    if metric_type is not None:
        readings = readings.filter(metric_type=metric_type)
    return readings.order_by("recorded_at", "id")


def exceeds_sync_limit(readings: QuerySet) -> bool:
    """More readings than a request may export itself; counts at most one past the limit."""
    limit = settings.EXPORT_SYNC_MAX_READINGS
    return readings.order_by()[: limit + 1].count() > limit


def export_filename(*, format: str, start: date, end: date, metric_type: MetricType | None) -> str:
    what = metric_type.code if metric_type is not None else "health-metrics"
    return f"openvitals-{what}-{start.isoformat()}-to-{end.isoformat()}.{EXTENSIONS[format]}"


# --- CSV -----------------------------------------------------------------------------------------


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment is not None else ""


def _number(value: float | None) -> str:
    # Ten significant digits: beyond any device's precision, and free of binary noise (79.83225712000001).
    return f"{value:.10g}" if value is not None else ""


class _Line:
    """A file-like object whose write() hands back what the csv writer wrote (Django's streaming recipe)."""

    def write(self, text: str) -> str:
        return text


def csv_lines(readings: QuerySet) -> Iterator[str]:
    """The header and one line per reading, read through a server-side cursor in chunks."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    catalog = get_catalog()
    yield writer.writerow(CSV_HEADER)
    rows = readings.values_list(*_CSV_FIELDS).iterator(chunk_size=CSV_CHUNK_SIZE)
    for row in rows:
        (
            pk,
            recorded_at,
            ended_at,
            local_date,
            type_id,
            value,
            second,
            original,
            original_second,
            unit,
            source,
            data_source,
        ) = row
        metric_type = catalog.by_id[type_id]
        yield writer.writerow(
            (
                pk,
                _utc(recorded_at),
                _utc(ended_at),
                local_date.isoformat(),
                metric_type.code,
                metric_type.loinc,
                _number(value),
                _number(second),
                metric_type.unit,
                _number(original),
                _number(original_second),
                unit,
                source,
                data_source,
            )
        )


# --- PDF -----------------------------------------------------------------------------------------


def _figure(value: float | None, second: float | None, precision: int) -> str:
    """A figure as a chart shows it: the catalog's decimals for the type (`74.8`, `72`, `120/80`)."""
    if value is None:
        return ""
    text = format_value(value, precision)
    return f"{text}/{format_value(second, precision)}" if second is not None else text


def _chart(points: list[tuple[date, float, float | None]], *, start: date, end: date) -> Drawing:
    """Daily means over the whole period; a second line (diastolic) where the type has one."""
    width, height = 17 * cm, 9 * cm
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 1.5 * cm, 1.2 * cm, width - 2 * cm, height - 2 * cm
    plot.data = [[(day.toordinal(), value) for day, value, _ in points]]
    seconds = [(day.toordinal(), second) for day, _, second in points if second is not None]
    if seconds:
        plot.data.append(seconds)
    values = [value for series in plot.data for _, value in series]
    low, high = min(values), max(values)
    margin = (high - low) * 0.1 or max(abs(high) * 0.1, 1)
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = low - margin, high + margin
    first, last = start.toordinal(), max(end.toordinal(), start.toordinal() + 1)
    step = max(1, (last - first) // 6)
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = first, last
    plot.xValueAxis.valueSteps = list(range(first, last + 1, step))
    plot.xValueAxis.labelTextFormat = lambda ordinal: date.fromordinal(int(ordinal)).strftime("%b %d")
    plot.xValueAxis.labels.fontSize = plot.yValueAxis.labels.fontSize = 7
    for index, color in enumerate((colors.HexColor("#c0392b"), colors.HexColor("#2471a3"))):
        plot.lines[index].strokeColor = color
        plot.lines[index].symbol = makeMarker("FilledCircle", size=3, fillColor=color)
    drawing = Drawing(width, height)
    drawing.add(plot)
    return drawing


def pdf_report(*, patient: User, start: date, end: date, metric_type: MetricType | None, readings: QuerySet) -> bytes:
    """A report whose sections each start a page: the title, a summary table, a chart per type, open alerts.

    Figures are over the raw readings of the period (the summary selector's bucket_stats, by type); the
    charts show daily means by the reading's local day. Open alerts are the ones not resolved now, of the
    exported types, whatever their start.
    """
    tz = user_timezone(patient)
    styles = getSampleStyleSheet()
    catalog = get_catalog()
    stats = sorted(bucket_stats(readings, "metric_type"), key=lambda row: row["bucket"])
    daily: dict[int, list[tuple[date, float, float | None]]] = defaultdict(list)
    for type_id, day, mean, second in (
        readings.order_by()
        .values("metric_type", "local_date")
        .annotate(mean=Avg("value"), second=Avg("secondary_value"))
        .order_by("metric_type", "local_date")
        .values_list("metric_type", "local_date", "mean", "second")
    ):
        daily[type_id].append((day, mean, second))
    alerts = HealthAlert.objects.filter(user=patient, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
    if metric_type is not None:
        alerts = alerts.filter(metric_type=metric_type)

    name = patient.get_full_name() or patient.email
    # Paragraphs read a markup of their own: people's text is escaped (an alert saying "SpO2 < 90%").
    who = escape(f"{name} ({patient.email})")
    period = f"{start.isoformat()} to {end.isoformat()}"
    story: list[Any] = [
        Paragraph("Health report", styles["Title"]),
        Spacer(1, 0.5 * cm),
        Paragraph(f"Patient: {who}", styles["Normal"]),
        Paragraph(f"Period: {period} (local days, {tz.key})", styles["Normal"]),
        Paragraph(f"Metric types: {metric_type.display_name if metric_type else 'all'}", styles["Normal"]),
        Paragraph(f"Readings: {sum(row['count'] for row in stats)}", styles["Normal"]),
        Paragraph(f"Generated at: {timezone.now().astimezone(tz):%Y-%m-%d %H:%M %Z}", styles["Normal"]),
        PageBreak(),
        Paragraph("Summary", styles["Heading1"]),
    ]
    if stats:
        table = [["Metric type", "Unit", "Count", "Min", "Mean", "Max"]]
        for row in stats:
            t = catalog.by_id[row["bucket"]]
            table.append(
                [
                    t.display_name,
                    t.unit_label or t.unit,
                    str(row["count"]),
                    _figure(row["min"], row["secondary_min"], t.precision),
                    _figure(row["mean"], row["secondary_mean"], t.precision),
                    _figure(row["max"], row["secondary_max"], t.precision),
                ]
            )
        story.append(_table(table))
    else:
        story.append(Paragraph("No readings in this period.", styles["Normal"]))
    for row in stats:
        t = catalog.by_id[row["bucket"]]
        story += [
            PageBreak(),
            Paragraph(f"{t.display_name}: daily mean ({t.unit_label or t.unit})", styles["Heading1"]),
            _chart(daily[t.id], start=start, end=end),
        ]
        if t.is_pair:
            story.append(Paragraph("Red: systolic. Blue: diastolic.", styles["Normal"]))
    story += [PageBreak(), Paragraph("Open alerts", styles["Heading1"])]
    rows = [["Started", "Metric type", "Severity", "Status", "Message"]]
    for alert in alerts.order_by("-started_at"):
        rows.append(
            [
                f"{alert.started_at.astimezone(tz):%Y-%m-%d %H:%M}",
                catalog.by_id[alert.metric_type_id].display_name,
                alert.get_severity_display(),
                alert.get_status_display(),
                Paragraph(escape(alert.message), styles["BodyText"]),
            ]
        )
    if len(rows) > 1:
        story.append(_table(rows, widths=[3 * cm, 3.2 * cm, 2 * cm, 2.6 * cm, 6.2 * cm]))
    else:
        story.append(Paragraph("No open alerts.", styles["Normal"]))

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(2 * cm, 1.2 * cm, f"OpenVitals health report: {name}, {period}. Page {document.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, title=f"Health report: {name}", author="OpenVitals")
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eaecee")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


# --- FHIR ----------------------------------------------------------------------------------------


def export_appointments(*, patient: User, requested_by: User, start: date, end: date) -> QuerySet:
    """The patient's appointments starting on the local days start..end (the patient's zone), oldest first, of
    those `requested_by` may see (Appointment.objects.for_user: the one access rule)."""
    tz = user_timezone(patient)
    since = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    until = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return (
        Appointment.objects.for_user(requested_by)
        .filter(patient=patient, starts_at__gte=since, starts_at__lt=until)
        .select_related("patient", "provider", "appointment_type")
        .order_by("starts_at", "id")
    )


def export_plans(*, patient: User, requested_by: User, start: date, end: date) -> QuerySet:
    """The patient's medication plans whose dates overlap start..end, oldest first, of those `requested_by` may see
    (MedicationPlan.objects.for_user: the medications scope), loaded for the FHIR mappers."""
    plans = (
        MedicationPlan.objects.for_user(requested_by)
        .filter(patient=patient, start_date__lte=end)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=start))
        .order_by("start_date", "created_at", "id")
    )
    return plans_for_fhir(plans)


def fhir_document(
    *, patient: User, readings: QuerySet, appointments: QuerySet | None = None, plans: QuerySet | None = None
) -> bytes:
    """The FHIR collection Bundle (records.fhir) as JSON bytes."""
    patient = User.objects.select_related("profile").get(pk=patient.pk)
    rows = readings.select_related("metric_type").iterator(chunk_size=CSV_CHUNK_SIZE)
    bundle = bundle_for_export(
        patient=patient, readings=rows, appointments=appointments or (), plans=plans if plans is not None else ()
    )
    return json.dumps(bundle, cls=DjangoJSONEncoder).encode()


def export_document(
    *,
    format: str,
    patient: User,
    start: date,
    end: date,
    metric_type: MetricType | None,
    readings: QuerySet,
    requested_by: User | None = None,
) -> bytes:
    """A PDF or FHIR export as bytes (a CSV is streamed instead: csv_lines).

    A FHIR export of every type (`metric_type` None) also holds the appointments and medication plans
    `requested_by` may see.
    """
    if format == ExportFormat.PDF:
        return pdf_report(patient=patient, start=start, end=end, metric_type=metric_type, readings=readings)
    appointments = plans = None
    if metric_type is None and requested_by is not None:
        appointments = export_appointments(patient=patient, requested_by=requested_by, start=start, end=end)
        plans = export_plans(patient=patient, requested_by=requested_by, start=start, end=end)
    return fhir_document(patient=patient, readings=readings, appointments=appointments, plans=plans)


# --- Jobs ----------------------------------------------------------------------------------------


STALE_RUNNING = timedelta(minutes=12)  # past run_export_job_task's hard time limit (11 minutes): its worker died


def start_export_job(
    *, requested_by: User, patient: User, format: str, start: date, end: date, metric_type: MetricType | None
) -> ExportJob:
    """Record the job and hand it to a worker once the request has committed."""
    job = ExportJob.objects.create(
        requested_by=requested_by,
        user=patient,
        format=format,
        start_date=start,
        end_date=end,
        metric_type=metric_type,
    )
    from .tasks import run_export_job_task

    transaction.on_commit(lambda: run_export_job_task.delay(str(job.pk)), robust=True)
    return job


def run_export_job(*, job: ExportJob) -> ExportJob:
    """Write the job's file to the default storage and mark it done, or failed with the reason.

    Idempotent: only a pending job, or a running one whose worker died (running past the task's hard time
    limit), is claimed; a finished job, or one another worker is making, is left as it is.
    """
    now = timezone.now()
    claimable = Q(status=ExportStatus.PENDING) | Q(status=ExportStatus.RUNNING, started_at__lt=now - STALE_RUNNING)
    claimed = ExportJob.objects.filter(claimable, pk=job.pk).update(status=ExportStatus.RUNNING, started_at=now)
    if not claimed:
        return job
    readings = export_readings(patient=job.user, start=job.start_date, end=job.end_date, metric_type=job.metric_type)
    name = export_filename(format=job.format, start=job.start_date, end=job.end_date, metric_type=job.metric_type)
    try:
        if job.format == ExportFormat.CSV:
            with tempfile.TemporaryFile() as handle:
                rows = -1  # the header is not a reading
                for line in csv_lines(readings):
                    handle.write(line.encode())
                    rows += 1
                handle.seek(0)
                job.file.save(name, File(handle), save=False)
        else:
            content = export_document(
                format=job.format,
                patient=job.user,
                start=job.start_date,
                end=job.end_date,
                metric_type=job.metric_type,
                readings=readings,
                requested_by=job.requested_by,
            )
            rows = readings.count()
            job.file.save(name, ContentFile(content), save=False)
    except Exception as exc:
        logger.exception("export_failed", export_job=str(job.pk))
        job.status, job.error = ExportStatus.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        job.status, job.row_count, job.size_bytes = ExportStatus.DONE, rows, job.file.size
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "file", "row_count", "size_bytes", "error", "finished_at"])
    if job.status == ExportStatus.FAILED:
        notify(
            "export_failed",
            recipients=[job.requested_by],
            about=job.user,
            payload={"reason": "The export could not be written; try again, or ask for a shorter period."},
            dedupe_key=f"export:{job.pk}:failed",
        )
    return job


def requeue_stranded_export_jobs(*, now: datetime | None = None) -> int:
    """Hand jobs to a worker again that never reached one (the broker was down) or whose worker died.

    A job pending for two minutes was not picked up; one running longer than the task's hard time limit
    has no live worker. `run_export_job` claims either, so nothing is lost.
    """
    from .tasks import run_export_job_task

    now = now or timezone.now()
    stranded = ExportJob.objects.filter(
        Q(status=ExportStatus.PENDING, created_at__lt=now - timedelta(minutes=2))
        | Q(status=ExportStatus.RUNNING, started_at__lt=now - STALE_RUNNING)
    ).values_list("pk", flat=True)
    return enqueue_each(run_export_job_task, stranded, limit=1000)


def expire_export_files(*, now: datetime | None = None) -> dict[str, int]:
    """Delete the files of exports made more than EXPORT_RETENTION_HOURS ago and mark their jobs expired.

    Idempotent: an expired job has no file left and is not selected again. One job whose file cannot be
    deleted (storage down, a file already gone by hand is fine) is logged and tried again next time; the
    others still expire.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.EXPORT_RETENTION_HOURS)
    due = ExportJob.objects.filter(status=ExportStatus.DONE, finished_at__lt=cutoff).order_by("finished_at")
    sweep = Sweep("expire_export_files")
    for job in due[:1000]:
        with sweep.item(export_job=job.pk):
            if job.file:
                job.file.storage.delete(job.file.name)  # deleting a missing file is not an error
            ExportJob.objects.filter(pk=job.pk, status=ExportStatus.DONE).update(status=ExportStatus.EXPIRED, file="")
    return {"expired": sweep.done, "failed": sweep.failed}


def presigned_url(*, job: ExportJob) -> str | None:
    """A time-limited link straight to the file when the storage can sign one (S3); None otherwise."""
    storage = job.file.storage
    if not isinstance(storage, S3Storage):
        return None
    filename = export_filename(format=job.format, start=job.start_date, end=job.end_date, metric_type=job.metric_type)
    return storage.url(
        job.file.name,
        parameters={
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": CONTENT_TYPES[job.format],
            "ResponseCacheControl": "no-store",  # health data: no cache between the bucket and the user keeps it
        },
    )
