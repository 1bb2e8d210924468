from datetime import date

from records.models import ExportJob

OUTSIDER_FACTORIES = {
    "export-job": lambda owner: ExportJob.objects.create(
        requested_by=owner, user=owner, format="csv", start_date=date(2026, 1, 1), end_date=date(2026, 1, 31)
    ),
}
