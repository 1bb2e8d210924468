"""The access rule as a queryset: rows that belong to a patient, visible to whoever may see them."""

from __future__ import annotations

from django.db import models

from .models import User
from .selectors import visible_patients


class PatientOwnedQuerySet(models.QuerySet):
    """Rows whose `patient_field` names their patient; `for_user` keeps those the user may see for `access_scope`."""

    patient_field = "user"
    access_scope: str | None = None

    def for_user(self, user: User) -> PatientOwnedQuerySet:
        if not user.is_authenticated:
            return self.none()
        if not user.is_clinician and not user.sees_all_patients:  # the usual case: one's own rows
            return self.filter(**{self.patient_field: user})
        return self.filter(**{f"{self.patient_field}__in": visible_patients(user, self.access_scope)})
