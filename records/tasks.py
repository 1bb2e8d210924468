from __future__ import annotations

from celery import shared_task

from .exports import expire_export_files, requeue_stranded_export_jobs, run_export_job
from .models import ExportJob


# A year of readings for one patient is well within this; the default limits (60/90 s) are for short tasks.
@shared_task(soft_time_limit=10 * 60, time_limit=11 * 60)
def run_export_job_task(job_id: str) -> None:
    """Make an export job's file (default queue). Idempotent: a finished job is left as it is."""
    job = ExportJob.objects.filter(pk=job_id).select_related("user", "metric_type").first()
    if job is not None:  # deleted since enqueue: nothing to do
        run_export_job(job=job)


@shared_task
def requeue_stranded_export_jobs_task() -> int:
    """Every few minutes: export jobs the broker never delivered, or whose worker died, go to a worker again."""
    return requeue_stranded_export_jobs()


@shared_task
def expire_export_files_task() -> dict[str, int]:
    """Hourly: delete export files older than EXPORT_RETENTION_HOURS. Idempotent: an expired job has no file."""
    return expire_export_files()
