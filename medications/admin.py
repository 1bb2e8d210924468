"""The medications admin. Plans, their revisions and doses are a patient's health data: read-only, through the scoped
patient-data admin, so a clinician sees only the patients whose grant includes the medications scope, staff see
all, and every read of another person's data is in the access log. Plans change only through the API's services,
which write a revision for each change.

The catalog (drug classes, ingredients, products, interaction rules) is no patient's data: staff edit it, by model
permission; clinicians, whose admin is for their patients, do not see it.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.admin import PatientDataAdmin, ReadableByClinicians
from accounts.models import Scope

from .models import Dose, DrugClass, Ingredient, InteractionRule, Medication, MedicationPlan, PlanRevision

RECENT_DOSE_DAYS = 14

# --- The catalog ---------------------------------------------------------------------------------------------------


class CatalogAdmin(admin.ModelAdmin):
    """Staff with the model's permissions (superusers: all); never a clinician who is not a superuser."""

    @staticmethod
    def _not_a_clinician(request: HttpRequest) -> bool:
        user = request.user  # anonymous on the login page, which lists no apps
        return user.is_authenticated and (user.is_superuser or not user.is_clinician)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._not_a_clinician(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return self._not_a_clinician(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._not_a_clinician(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return self._not_a_clinician(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return self._not_a_clinician(request) and super().has_delete_permission(request, obj)


@admin.register(DrugClass)
class DrugClassAdmin(CatalogAdmin):
    list_display = ("code", "name", "atc_code", "duplicate_therapy", "source")
    list_filter = ("duplicate_therapy",)
    search_fields = ("code", "name", "atc_code")


@admin.register(Ingredient)
class IngredientAdmin(CatalogAdmin):
    list_display = ("name", "rxcui", "source")
    search_fields = ("name", "rxcui")
    autocomplete_fields = ("classes",)


@admin.register(Medication)
class MedicationAdmin(CatalogAdmin):
    list_display = ("name", "generic_name", "form", "strength", "rxcui", "drug_class", "active")
    list_filter = ("active",)
    search_fields = ("name", "generic_name", "rxcui")
    list_select_related = ("drug_class",)
    # A full RxNorm release has tens of thousands of ingredients: search, not a select of all of them.
    autocomplete_fields = ("ingredients", "drug_class")


@admin.register(InteractionRule)
class InteractionRuleAdmin(CatalogAdmin):
    list_display = ("__str__", "severity", "summary", "source")
    list_filter = ("severity",)
    search_fields = ("summary", "ingredient_a__name", "ingredient_b__name", "class_a__name", "class_b__name")
    list_select_related = ("ingredient_a", "class_a", "ingredient_b", "class_b")
    autocomplete_fields = ("ingredient_a", "class_a", "ingredient_b", "class_b")


# --- A patient's plans, revisions and doses ------------------------------------------------------------------------


class MedicationDataAdmin(PatientDataAdmin):
    """A patient's medication data, under the medications scope: read-only for everyone; staff may delete."""

    access_scope = Scope.MEDICATIONS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


class ReadOnlyInline(ReadableByClinicians, admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:  # noqa: ANN001
        return tuple(self.fields)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


class PlanRevisionInline(ReadOnlyInline):
    model = PlanRevision
    fields = ("number", "at", "actor", "changes", "acknowledged_findings")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("actor")


class RecentDoseInline(ReadOnlyInline):
    """The plan's doses of the last two weeks and the ones scheduled ahead; the dose list has them all."""

    model = Dose
    verbose_name_plural = f"doses (last {RECENT_DOSE_DAYS} days and ahead)"
    fields = ("local_date", "scheduled_at", "status", "late", "taken_at", "quantity", "skip_reason", "note")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        since = timezone.localdate() - timedelta(days=RECENT_DOSE_DAYS)
        return super().get_queryset(request).filter(local_date__gte=since)


@admin.register(MedicationPlan)
class MedicationPlanAdmin(MedicationDataAdmin):
    patient_field = "patient"
    list_display = ("name", "patient", "dose_and_unit", "status", "start_date", "end_date", "stock")
    list_filter = ("status", "timing", "as_needed")
    search_fields = ("name", "medication__name")
    list_select_related = ("patient",)
    raw_id_fields = ("patient", "medication", "prescriber", "created_by")
    inlines = [PlanRevisionInline, RecentDoseInline]

    @admin.display(description="dose")
    def dose_and_unit(self, plan: MedicationPlan) -> str:
        return f"{plan.dose.normalize():f} {plan.dose_unit}"


@admin.register(PlanRevision)
class PlanRevisionAdmin(MedicationDataAdmin):
    patient_field = "plan__patient"
    list_display = ("plan_name", "number", "at", "actor", "patient")
    search_fields = ("plan__name",)
    list_select_related = ("plan__patient", "actor")
    raw_id_fields = ("plan", "actor")

    @admin.display(description="plan", ordering="plan__name")
    def plan_name(self, revision: PlanRevision) -> str:
        return revision.plan.name

    @admin.display(description="patient")
    def patient(self, revision: PlanRevision) -> str:
        return str(revision.plan.patient)


@admin.register(Dose)
class DoseAdmin(MedicationDataAdmin):
    patient_field = "patient"
    list_display = ("local_date", "scheduled_at", "patient", "plan_name", "status", "late", "taken_at")
    list_filter = ("status", "late", "local_date")
    search_fields = ("plan__name",)
    list_select_related = ("patient", "plan")
    raw_id_fields = ("plan", "patient", "logged_by")

    @admin.display(description="plan", ordering="plan__name")
    def plan_name(self, dose: Dose) -> str:
        return dose.plan.name
